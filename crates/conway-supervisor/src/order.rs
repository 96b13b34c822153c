//! Start order: services after the services they depend on; the services of a cycle
//! together (Tarjan's strongly connected components, which come out dependencies first).

use std::collections::{BTreeMap, BTreeSet};

/// The services in the order they start, and what each waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartOrder {
    /// Groups in start order: each group is one service, or the services of a cycle,
    /// which start together. Within a group, names are sorted.
    pub groups: Vec<Vec<String>>,
    /// Each service's gates: the dependencies, outside its own group, that must have a
    /// healthy instance before it starts.
    pub gates: BTreeMap<String, Vec<String>>,
}

/// Orders `services` (name → dependencies). Dependencies that are not keys of
/// `services` (external services) are ignored: nothing here starts them.
pub fn start_order(services: &BTreeMap<String, Vec<String>>) -> StartOrder {
    let mut tarjan = Tarjan {
        services,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        groups: Vec::new(),
    };
    for name in services.keys() {
        if !tarjan.index.contains_key(name.as_str()) {
            tarjan.visit(name);
        }
    }
    let groups = tarjan.groups;
    let group_of: BTreeMap<&str, usize> = groups
        .iter()
        .enumerate()
        .flat_map(|(i, group)| group.iter().map(move |name| (name.as_str(), i)))
        .collect();
    let gates = services
        .iter()
        .map(|(name, dependencies)| {
            let own = group_of[name.as_str()];
            let mut gates: Vec<String> = dependencies
                .iter()
                .filter(|d| group_of.get(d.as_str()).is_some_and(|&g| g != own))
                .cloned()
                .collect();
            gates.sort();
            gates.dedup();
            (name.clone(), gates)
        })
        .collect();
    StartOrder { groups, gates }
}

struct Tarjan<'a> {
    services: &'a BTreeMap<String, Vec<String>>,
    index: BTreeMap<&'a str, usize>,
    low: BTreeMap<&'a str, usize>,
    stack: Vec<&'a str>,
    on_stack: BTreeSet<&'a str>,
    next: usize,
    groups: Vec<Vec<String>>,
}

impl<'a> Tarjan<'a> {
    fn visit(&mut self, name: &'a str) {
        self.index.insert(name, self.next);
        self.low.insert(name, self.next);
        self.next += 1;
        self.stack.push(name);
        self.on_stack.insert(name);
        let services = self.services;
        let dependencies = services.get(name).map(Vec::as_slice).unwrap_or_default();
        for dependency in dependencies {
            let Some((dependency, _)) = services.get_key_value(dependency.as_str()) else {
                continue;
            };
            let dependency = dependency.as_str();
            if !self.index.contains_key(dependency) {
                self.visit(dependency);
                let low = self.low[name].min(self.low[dependency]);
                self.low.insert(name, low);
            } else if self.on_stack.contains(dependency) {
                let low = self.low[name].min(self.index[dependency]);
                self.low.insert(name, low);
            }
        }
        if self.low[name] == self.index[name] {
            let mut group = Vec::new();
            while let Some(member) = self.stack.pop() {
                self.on_stack.remove(member);
                group.push(member.to_owned());
                if member == name {
                    break;
                }
            }
            group.sort();
            self.groups.push(group);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        edges
            .iter()
            .map(|(name, deps)| {
                (
                    (*name).to_owned(),
                    deps.iter().map(|d| (*d).to_owned()).collect(),
                )
            })
            .collect()
    }

    fn position(order: &StartOrder, name: &str) -> usize {
        order
            .groups
            .iter()
            .position(|g| g.iter().any(|n| n == name))
            .unwrap_or_else(|| panic!("{name} not ordered"))
    }

    #[test]
    fn dependencies_start_first() {
        let order = start_order(&graph(&[
            ("orders", &["inventory", "payments"]),
            ("inventory", &["catalog"]),
            ("payments", &[]),
            ("catalog", &[]),
            ("web", &["orders", "catalog"]),
        ]));
        assert_eq!(order.groups.len(), 5);
        assert!(order.groups.iter().all(|g| g.len() == 1));
        for (service, dependency) in [
            ("orders", "inventory"),
            ("orders", "payments"),
            ("inventory", "catalog"),
            ("web", "orders"),
            ("web", "catalog"),
        ] {
            assert!(
                position(&order, dependency) < position(&order, service),
                "{dependency} before {service}: {:?}",
                order.groups
            );
        }
        assert_eq!(order.gates["orders"], ["inventory", "payments"]);
        assert!(order.gates["catalog"].is_empty());
    }

    #[test]
    fn a_cycle_starts_together_after_what_it_needs() {
        let order = start_order(&graph(&[
            ("a", &["b"]),
            ("b", &["c", "base"]),
            ("c", &["a"]),
            ("base", &[]),
            ("top", &["a"]),
        ]));
        assert_eq!(
            order.groups,
            [
                vec!["base".to_owned()],
                vec!["a".into(), "b".into(), "c".into()],
                vec!["top".into()]
            ]
        );
        // Inside the cycle nobody waits for another member, only for what is outside.
        assert!(order.gates["a"].is_empty());
        assert!(order.gates["c"].is_empty());
        assert_eq!(order.gates["b"], ["base"]);
        assert_eq!(order.gates["top"], ["a"]);
    }

    #[test]
    fn self_dependency_and_external_dependencies_are_no_gates() {
        let order = start_order(&graph(&[
            ("a", &["a", "legacy-billing"]),
            ("b", &["a", "a"]),
        ]));
        assert_eq!(order.groups, [vec!["a".to_owned()], vec!["b".to_owned()]]);
        assert!(order.gates["a"].is_empty());
        assert_eq!(order.gates["b"], ["a"]);
    }

    #[test]
    fn two_cycles_in_a_chain() {
        let order = start_order(&graph(&[
            ("x1", &["x2"]),
            ("x2", &["x1", "y1"]),
            ("y1", &["y2"]),
            ("y2", &["y1"]),
        ]));
        assert_eq!(
            order.groups,
            [
                vec!["y1".to_owned(), "y2".into()],
                vec!["x1".into(), "x2".into()]
            ]
        );
        assert_eq!(order.gates["x2"], ["y1"]);
    }

    #[test]
    fn every_service_is_ordered_once() {
        let services = graph(&[("a", &[]), ("b", &[]), ("c", &["b"])]);
        let order = start_order(&services);
        let mut all: Vec<_> = order.groups.concat();
        all.sort();
        assert_eq!(all, ["a", "b", "c"]);
    }
}
