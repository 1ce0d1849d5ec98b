//! One page of a filtered query, ordered in the database and counted there.

use berth_domain::listing::{Direction, Page, PageRequest};
use berth_domain::ports::StoreError;
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, FromQueryResult, Order, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, QueryTrait, Select,
};

use crate::errors::store_error;

/// Fetches `page` of `filtered`, ordered by `column` then by `guid` (so pages never overlap),
/// and counts every match. A short page that is not past the end tells the total itself, which
/// saves the `COUNT` query on the last (or only) page.
pub(crate) async fn fetch_page<E>(
    db: &DatabaseConnection,
    filtered: Select<E>,
    column: E::Column,
    guid: E::Column,
    direction: Direction,
    page: PageRequest,
) -> Result<Page<E::Model>, StoreError>
where
    E: EntityTrait,
    E::Model: FromQueryResult + Send + Sync,
{
    let order = match direction {
        Direction::Ascending => Order::Asc,
        Direction::Descending => Order::Desc,
    };
    let offset = page.offset();
    let per_page = u64::from(page.per_page());
    let items = filtered
        .clone()
        .order_by(column, order.clone())
        .order_by(guid, order)
        .offset(offset)
        .limit(per_page)
        .all(db)
        .await
        .map_err(store_error)?;
    with_total(db, filtered, items, offset, per_page).await
}

/// [`fetch_page`] in two steps inside one statement: the page's guids first, from the indexes
/// alone (`guid IN (SELECT guid ... ORDER BY ... LIMIT ... OFFSET ...)`), then only those rows.
/// For a filter the planner cannot walk in order (a label selector is a join whose match rate
/// it underestimates), it otherwise reads every matching row whole before it sorts and keeps 50.
pub(crate) async fn fetch_page_keys_first<E>(
    db: &DatabaseConnection,
    filtered: Select<E>,
    column: E::Column,
    guid: E::Column,
    direction: Direction,
    page: PageRequest,
) -> Result<Page<E::Model>, StoreError>
where
    E: EntityTrait,
    E::Model: FromQueryResult + Send + Sync,
{
    let order = match direction {
        Direction::Ascending => Order::Asc,
        Direction::Descending => Order::Desc,
    };
    let offset = page.offset();
    let per_page = u64::from(page.per_page());
    let keys = filtered
        .clone()
        .select_only()
        .column(guid)
        .order_by(column, order.clone())
        .order_by(guid, order.clone())
        .offset(offset)
        .limit(per_page)
        .into_query();
    let items = E::find()
        .filter(guid.in_subquery(keys))
        .order_by(column, order.clone())
        .order_by(guid, order)
        .all(db)
        .await
        .map_err(store_error)?;
    with_total(db, filtered, items, offset, per_page).await
}

/// The page with its total: a short page that is not past the end tells the total itself.
async fn with_total<E>(
    db: &DatabaseConnection,
    filtered: Select<E>,
    items: Vec<E::Model>,
    offset: u64,
    per_page: u64,
) -> Result<Page<E::Model>, StoreError>
where
    E: EntityTrait,
    E::Model: FromQueryResult + Send + Sync,
{
    let fetched = items.len() as u64;
    let total_results = if fetched < per_page && (fetched > 0 || offset == 0) {
        offset + fetched
    } else {
        filtered.count(db).await.map_err(store_error)?
    };
    Ok(Page::new(items, total_results))
}
