//! Dependency cycles: legal (the services in a cycle start together), but worth a warning.

use std::collections::{BTreeMap, BTreeSet};

use super::{Report, root};
use crate::manifest::Manifest;

pub(super) fn check(manifest: &Manifest, report: &mut Report<'_, '_>) {
    for cycle in cycles(manifest) {
        let (first, second) = (&cycle[0], &cycle[1 % cycle.len()]);
        let index = manifest.services[first]
            .depends_on
            .iter()
            .position(|d| d == second)
            .unwrap_or(0);
        let mut names = cycle.clone();
        names.push(first.clone());
        report.warning(
            &root()
                .key("services")
                .key(first)
                .key("depends_on")
                .index(index),
            format!(
                "dependency cycle: {} (these services start together)",
                names.join(" → ")
            ),
        );
    }
}

/// The dependency cycles among declared services (strongly connected components with
/// more than one service), each as a path that starts at its smallest name.
pub(crate) fn cycles(manifest: &Manifest) -> Vec<Vec<String>> {
    let edges: BTreeMap<&str, Vec<&str>> = manifest
        .services
        .iter()
        .map(|(name, service)| {
            let targets = service
                .depends_on
                .iter()
                .map(String::as_str)
                .filter(|d| *d != name && manifest.services.contains_key(*d))
                .collect();
            (name.as_str(), targets)
        })
        .collect();
    let mut found = Vec::new();
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    for &start in edges.keys() {
        if seen.contains(start) {
            continue;
        }
        let component = component_of(start, &edges);
        seen.extend(component.iter().copied());
        if component.len() > 1 {
            found.push(cycle_through(start, &component, &edges));
        }
    }
    found
}

/// The services that `start` reaches and that reach `start` back.
fn component_of<'a>(start: &'a str, edges: &BTreeMap<&'a str, Vec<&'a str>>) -> BTreeSet<&'a str> {
    let forward = reachable(start, |n| edges[n].clone());
    let backward = reachable(start, |n| {
        edges
            .iter()
            .filter(|(_, targets)| targets.contains(&n))
            .map(|(&source, _)| source)
            .collect()
    });
    forward.intersection(&backward).copied().collect()
}

fn reachable<'a>(start: &'a str, next: impl Fn(&'a str) -> Vec<&'a str>) -> BTreeSet<&'a str> {
    let mut visited = BTreeSet::from([start]);
    let mut stack = vec![start];
    while let Some(node) = stack.pop() {
        for target in next(node) {
            if visited.insert(target) {
                stack.push(target);
            }
        }
    }
    visited
}

/// A shortest path from `start` back to itself inside the component (breadth first).
fn cycle_through(
    start: &str,
    component: &BTreeSet<&str>,
    edges: &BTreeMap<&str, Vec<&str>>,
) -> Vec<String> {
    let mut parent: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(node) = queue.pop_front() {
        for &target in &edges[node] {
            if !component.contains(target) {
                continue;
            }
            if target == start {
                let mut path = vec![node.to_owned()];
                let mut at = node;
                while at != start {
                    at = parent[at];
                    path.push(at.to_owned());
                }
                path.reverse();
                return path;
            }
            if target != start && !parent.contains_key(target) {
                parent.insert(target, node);
                queue.push_back(target);
            }
        }
    }
    vec![start.to_owned()]
}
