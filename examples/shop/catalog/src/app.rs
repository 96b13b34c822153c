//! The catalog's HTTP API and store.
//!
//! - `GET /api/catalog/products[?category=C]`: every product (of a category).
//! - `GET /api/catalog/products/{id}`: one product, or 404.
//! - `GET /internal/audit`: how many products there are.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use rusqlite::{Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};
use shop_kit::sqlite::Db;
use shop_kit::{ApiError, Config};

/// The schema, and the products every fresh catalog starts with. `INSERT OR IGNORE`:
/// replicas that start together seed once, and a restart keeps prices as they are.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS products (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    category TEXT NOT NULL,
    price_cents INTEGER NOT NULL CHECK (price_cents >= 0),
    currency TEXT NOT NULL DEFAULT 'EUR'
);
CREATE INDEX IF NOT EXISTS products_by_category ON products (category);
INSERT OR IGNORE INTO products (id, name, description, category, price_cents) VALUES
    ('sku-espresso', 'Espresso beans, 1 kg', 'A dark roast for espresso machines.', 'coffee', 2490),
    ('sku-decaf', 'Decaf beans, 500 g', 'Swiss-water decaffeinated, medium roast.', 'coffee', 1390),
    ('sku-limited', 'Limited roast, 250 g', 'This month''s micro-lot: few bags left.', 'coffee', 3200),
    ('sku-sencha', 'Sencha green tea, 100 g', 'Steamed Japanese green tea.', 'tea', 1190),
    ('sku-grinder', 'Burr grinder', 'Conical burrs, 40 grind settings.', 'equipment', 8900),
    ('sku-kettle', 'Gooseneck kettle', 'For a slow, even pour.', 'equipment', 5400),
    ('sku-dripper', 'Pour-over dripper', 'Ceramic, fits size 02 filters.', 'equipment', 2200),
    ('sku-scale', 'Brewing scale', 'Weighs to 0.1 g, with a timer.', 'equipment', 3900),
    ('sku-filters', 'Paper filters, 100', 'Size 02, unbleached.', 'accessories', 650),
    ('sku-mug', 'Stoneware mug', 'Hand-glazed, 300 ml.', 'accessories', 1400);
";

/// A product.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Product {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) category: String,
    pub(crate) price_cents: i64,
    pub(crate) currency: String,
}

impl Product {
    const COLUMNS: &str = "id, name, description, category, price_cents, currency";

    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            name: row.get(1)?,
            description: row.get(2)?,
            category: row.get(3)?,
            price_cents: row.get(4)?,
            currency: row.get(5)?,
        })
    }
}

/// The catalog's state: its database.
#[derive(Debug, Clone)]
pub(crate) struct Catalog {
    db: Arc<Db>,
}

impl Catalog {
    /// Opens (creating and seeding) `DATA_DIR/catalog.db`.
    pub(crate) fn open(config: &Config) -> rusqlite::Result<Self> {
        Ok(Self {
            db: Db::open(config.data_dir.join("catalog.db"), SCHEMA)?,
        })
    }
}

/// The catalog's routes.
pub(crate) fn router(catalog: Catalog) -> Router {
    Router::new()
        .route("/api/catalog/products", get(list))
        .route("/api/catalog/products/{id}", get(one))
        .route("/internal/audit", get(audit))
        .with_state(catalog)
}

#[derive(Debug, Deserialize)]
struct Filter {
    category: Option<String>,
}

async fn list(
    State(catalog): State<Catalog>,
    Query(filter): Query<Filter>,
) -> Result<Json<Vec<Product>>, ApiError> {
    let products = catalog
        .db
        .call(move |c: &mut Connection| {
            let mut statement = c.prepare_cached(&format!(
                "SELECT {} FROM products WHERE ?1 IS NULL OR category = ?1 ORDER BY id",
                Product::COLUMNS
            ))?;
            let rows = statement.query_map([filter.category], Product::from_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await?;
    Ok(Json(products))
}

async fn one(
    State(catalog): State<Catalog>,
    Path(id): Path<String>,
) -> Result<Json<Product>, ApiError> {
    let wanted = id.clone();
    let product = catalog
        .db
        .call(move |c: &mut Connection| {
            let mut statement = c.prepare_cached(&format!(
                "SELECT {} FROM products WHERE id = ?1",
                Product::COLUMNS
            ))?;
            Ok(statement
                .query_row([wanted], Product::from_row)
                .optional()?)
        })
        .await?;
    product
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no product {id:?}")))
}

async fn audit(State(catalog): State<Catalog>) -> Result<Json<serde_json::Value>, ApiError> {
    let count: i64 = catalog
        .db
        .call(|c: &mut Connection| {
            Ok(c.query_row("SELECT COUNT(*) FROM products", [], |row| row.get(0))?)
        })
        .await?;
    Ok(Json(serde_json::json!({ "products": count })))
}

#[cfg(test)]
mod tests {
    use axum::http::{Method, StatusCode};
    use shop_kit::testing::call;

    use super::*;

    fn catalog(folder: &std::path::Path) -> Router {
        router(Catalog::open(&Config::for_test("catalog", folder)).unwrap())
    }

    #[tokio::test]
    async fn lists_the_seeded_products_and_filters_by_category() {
        let folder = tempfile::tempdir().unwrap();
        let app = catalog(folder.path());
        let (status, all) = call(&app, Method::GET, "/api/catalog/products", &[], None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(all.as_array().unwrap().len(), 10);
        let (_, coffee) = call(
            &app,
            Method::GET,
            "/api/catalog/products?category=coffee",
            &[],
            None,
        )
        .await;
        let coffee: Vec<Product> = serde_json::from_value(coffee).unwrap();
        assert_eq!(coffee.len(), 3);
        assert!(coffee.iter().all(|p| p.category == "coffee"));
    }

    #[tokio::test]
    async fn one_product_or_404() {
        let folder = tempfile::tempdir().unwrap();
        let app = catalog(folder.path());
        let (status, mug) = call(
            &app,
            Method::GET,
            "/api/catalog/products/sku-mug",
            &[],
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(mug["price_cents"], 1400);
        let (status, error) =
            call(&app, Method::GET, "/api/catalog/products/nope", &[], None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(error["error"]["code"], "not_found");
    }

    #[tokio::test]
    async fn a_second_replica_on_the_same_folder_seeds_nothing_twice() {
        let folder = tempfile::tempdir().unwrap();
        let first = catalog(folder.path());
        let second = catalog(folder.path());
        for app in [first, second] {
            let (_, audit) = call(&app, Method::GET, "/internal/audit", &[], None).await;
            assert_eq!(audit["products"], 10);
        }
    }
}
