//! One page of a list, from any [`LinkDirectory`]: the directory reads rows in order, the domain's
//! filter keeps what the query asks for, and a page never reads more than [`SCAN_BUDGET`] rows.

use kurz_domain::listing::{ListFilter, ListPosition, SCAN_BUDGET};
use kurz_domain::{Link, Owner, Timestamp};

use crate::{InfraError, LinkDirectory};

#[derive(Debug, Clone)]
pub struct ListQuery {
    /// Whose links; `None` lists every owner's (admin only).
    pub owner: Option<Owner>,
    pub after: Option<ListPosition>,
    pub filter: ListFilter,
    pub limit: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub items: Vec<Link>,
    /// Where the next page starts; `None` when the list has no more. A page may hold fewer than
    /// `limit` links and still have a next one: a search stops after reading its budget of rows.
    pub next: Option<ListPosition>,
}

/// The largest read from the directory in one go.
const MAX_CHUNK: usize = 1000;

pub async fn page(directory: &dyn LinkDirectory, query: &ListQuery, now: Timestamp) -> Result<Page, InfraError> {
    let limit = query.limit.max(1);
    let mut items = Vec::with_capacity(limit.min(100));
    let mut after = query.after.clone();
    let mut scanned = 0;
    // One more than a page first: with few links left out, one read fills the page and shows
    // whether another follows. Filters that leave out many read in growing chunks.
    let mut chunk = limit + 1;
    loop {
        let want = chunk.min(SCAN_BUDGET - scanned);
        let links = directory.scan(query.owner.as_ref(), after.as_ref(), want).await?;
        let exhausted = links.len() < want;
        scanned += links.len();
        let mut rest = links.into_iter();
        for link in rest.by_ref() {
            after = Some(ListPosition::of(&link));
            if query.filter.keeps(&link, now) {
                items.push(link);
                if items.len() == limit {
                    break;
                }
            }
        }
        if items.len() == limit {
            let more = rest.any(|link| query.filter.keeps(&link, now)) || !exhausted;
            return Ok(Page { items, next: if more { after } else { None } });
        }
        if exhausted {
            return Ok(Page { items, next: None });
        }
        if scanned >= SCAN_BUDGET {
            return Ok(Page { items, next: after });
        }
        chunk = (chunk * 4).min(MAX_CHUNK);
    }
}
