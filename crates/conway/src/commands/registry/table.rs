//! Listings as aligned plain-text columns, `kubectl get` style.

use comfy_table::{CellAlignment, Table, presets};
use conway_core::api::{Instance, InstanceState, ServiceView};

use super::routes::RouteView;

/// Services: name, version, owner, and how many of their instances are healthy.
pub(super) fn services(services: &[ServiceView]) -> String {
    let mut table = plain(&["NAME", "VERSION", "OWNER", "HEALTHY", "INSTANCES"]);
    for service in services {
        let definition = &service.definition;
        table.add_row([
            service.name.clone(),
            dash(definition.version.as_deref()),
            dash(definition.owner.as_deref()),
            service.healthy.to_string(),
            service.instances.to_string(),
        ]);
    }
    align_right(&mut table, &[3, 4]);
    render(&table)
}

/// Instances: id, service, endpoint, version, zone, state (with its reason), TTL.
pub(super) fn instances(instances: &[Instance]) -> String {
    let mut table = plain(&[
        "ID", "SERVICE", "ENDPOINT", "VERSION", "ZONE", "STATE", "TTL",
    ]);
    for instance in instances {
        table.add_row([
            instance.id.clone(),
            instance.service.clone(),
            instance.endpoint(),
            dash(instance.version.as_deref()),
            dash(instance.zone.as_deref()),
            state(instance),
            instance.ttl.to_string(),
        ]);
    }
    render(&table)
}

/// Routes: name, match, service (with a pinned version), auth, rate limit, deadline,
/// version split.
pub(super) fn routes(routes: &[RouteView]) -> String {
    let mut table = plain(&[
        "NAME",
        "MATCH",
        "SERVICE",
        "AUTH",
        "RATE LIMIT",
        "TIMEOUT",
        "SPLIT",
    ]);
    for view in routes {
        let route = &view.route;
        let mut service = route.service.clone();
        if route.strip_prefix {
            service.push_str(" (prefix stripped)");
        }
        table.add_row([
            view.name.clone(),
            super::routes::matcher(route),
            service,
            super::routes::auth(route),
            route
                .rate_limit
                .as_ref()
                .map_or_else(|| "-".to_owned(), |limit| limit.rate.to_string()),
            view.effective_timeout.to_string(),
            super::routes::split(view),
        ]);
    }
    render(&table)
}

fn state(instance: &Instance) -> String {
    let state = match instance.state {
        InstanceState::Starting => "starting",
        InstanceState::Healthy => "healthy",
        InstanceState::Unhealthy => "unhealthy",
    };
    match &instance.reason {
        Some(reason) => format!("{state} ({reason})"),
        None => state.to_owned(),
    }
}

fn dash(value: Option<&str>) -> String {
    value.unwrap_or("-").to_owned()
}

/// A borderless table whose columns are separated by two spaces.
fn plain(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_style(presets::NOTHING)
        .set_header(header.iter().copied());
    for column in table.column_iter_mut() {
        column.set_padding((0, 2));
    }
    table
}

fn align_right(table: &mut Table, columns: &[usize]) {
    for &index in columns {
        if let Some(column) = table.column_mut(index) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
}

/// The table's lines, without the padding after the last column.
fn render(table: &Table) -> String {
    table
        .lines()
        .map(|line| line.trim_end().to_owned() + "\n")
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(name: &str, version: Option<&str>, instances: usize, healthy: usize) -> ServiceView {
        let mut view = ServiceView {
            name: name.to_owned(),
            definition: Default::default(),
            instances,
            healthy,
        };
        view.definition.version = version.map(str::to_owned);
        view
    }

    #[test]
    fn columns_line_up_whatever_the_widths() {
        let text = services(&[view("orders", Some("1.4.0"), 12, 10), view("a", None, 1, 0)]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].starts_with("NAME    VERSION"), "{text}");
        assert!(lines[1].starts_with("orders  1.4.0"), "{text}");
        assert!(lines[2].starts_with("a       -"), "{text}");
        // Right-aligned counts end in the same column.
        assert_eq!(lines[1].len(), lines[2].len(), "{text}");
        assert!(
            lines[1].ends_with("10         12") && lines[2].ends_with(" 0          1"),
            "{text}"
        );
    }
}
