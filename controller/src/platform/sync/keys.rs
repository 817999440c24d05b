//! The API-key part of sync (reference §3.7): read the whole key listing, following pagination when
//! the platform API pages it, and decide which control-plane keys the listing may remove. A listing
//! that cannot be read completely removes nothing, and one that would remove an implausible share
//! of the known keys (a truncated answer looks exactly like that) is not applied either.

use serde::Deserialize;
use serde_json::Value;

use super::super::client::{PlatformClient, RestError};

/// The most pages one listing may take; a platform API that never says "done" is cut off here.
const MAX_PAGES: usize = 10_000;

/// Why a key listing could not be read completely.
#[derive(Debug, thiserror::Error)]
pub enum ListingError {
    /// A request failed.
    #[error(transparent)]
    Rest(#[from] RestError),
    /// The body is neither a key array nor a page of keys.
    #[error("API key listing: unexpected shape: {0}")]
    Shape(String),
    /// The pages do not add up to the total the platform API announced.
    #[error("API key listing incomplete: {0}")]
    Incomplete(String),
}

/// One answer of `GET /apis/api-keys`: the protocol's plain array, or a page in the platform
/// API's paginated shape (`{count, list, pagination: {total, offset, limit}}`).
#[derive(Deserialize)]
#[serde(untagged)]
enum Answer {
    All(Vec<Value>),
    Page(Page),
}

#[derive(Deserialize)]
struct Page {
    #[serde(alias = "apiKeys", alias = "keys")]
    list: Vec<Value>,
    count: Option<usize>,
    pagination: Option<Pagination>,
}

#[derive(Clone, Copy, Deserialize)]
struct Pagination {
    total: usize,
    offset: usize,
    limit: usize,
}

/// Reads every entry of the key listing; an error when any page fails or the pages do not add up.
pub async fn list_all(client: &PlatformClient) -> Result<Vec<Value>, ListingError> {
    let first = parse(client.api_keys(None).await?)?;
    let (mut keys, first_page) = match first {
        Answer::All(keys) => return Ok(keys),
        Answer::Page(p) => (checked(&p)?, p.pagination),
    };
    let Some(first_page) = first_page else {
        return Ok(keys);
    };
    let total = first_page.total;
    let mut limit = first_page.limit.max(1);
    for _ in 0..MAX_PAGES {
        if keys.len() >= total {
            return Ok(keys);
        }
        let offset = keys.len();
        let page = match parse(client.api_keys(Some((offset, limit))).await?)? {
            Answer::Page(p) => p,
            Answer::All(_) => return Err(ListingError::Shape("a plain array in a paginated listing".into())),
        };
        let list = checked(&page)?;
        let p = page
            .pagination
            .ok_or_else(|| ListingError::Shape("a page without pagination".into()))?;
        if p.offset != offset || p.total != total || list.is_empty() {
            return Err(ListingError::Incomplete(format!(
                "asked for offset {offset} of {total}, got offset {} of {} with {} keys",
                p.offset,
                p.total,
                list.len()
            )));
        }
        limit = p.limit.max(1);
        keys.extend(list);
    }
    Err(ListingError::Incomplete(format!("more than {MAX_PAGES} pages")))
}

fn parse(v: Value) -> Result<Answer, ListingError> {
    serde_json::from_value(v).map_err(|e| ListingError::Shape(e.to_string()))
}

/// The entries of a page, when its `count` (if any) matches them.
fn checked(p: &Page) -> Result<Vec<Value>, ListingError> {
    match p.count {
        Some(n) if n != p.list.len() => Err(ListingError::Incomplete(format!(
            "a page says {n} keys and holds {}",
            p.list.len()
        ))),
        _ => Ok(p.list.clone()),
    }
}

/// How much of the known control-plane keys one listing may remove.
#[derive(Clone, Copy, Debug)]
pub struct DropLimit {
    /// Percentage of the known keys; 100 allows any drop.
    pub max_percent: u8,
    /// The limit applies only when more keys than this are known.
    pub min_known: usize,
}

impl DropLimit {
    /// Whether removing `removed` of `known` keys is implausible (the listing is then not applied).
    pub fn refuses(self, removed: usize, known: usize) -> bool {
        known > self.min_known && self.max_percent < 100 && removed * 100 > known * usize::from(self.max_percent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_beyond_the_limit_are_refused_once_enough_keys_are_known() {
        let half = DropLimit {
            max_percent: 50,
            min_known: 4,
        };
        assert!(!half.refuses(4, 4), "a few keys may all go");
        assert!(half.refuses(5, 5), "all of more than a few may not");
        assert!(!half.refuses(5, 10));
        assert!(half.refuses(6, 10));
        let off = DropLimit {
            max_percent: 100,
            min_known: 0,
        };
        assert!(!off.refuses(10, 10));
    }

    #[test]
    fn answers_are_read_as_arrays_or_pages() {
        assert!(matches!(parse(serde_json::json!([{"uuid": "a"}])), Ok(Answer::All(v)) if v.len() == 1));
        let page = serde_json::json!({"count": 1, "list": [{"uuid": "a"}],
            "pagination": {"total": 3, "offset": 0, "limit": 1}});
        assert!(matches!(parse(page), Ok(Answer::Page(p)) if p.pagination.is_some_and(|p| p.total == 3)));
        let short = Page {
            list: vec![Value::Null],
            count: Some(2),
            pagination: None,
        };
        assert!(matches!(checked(&short), Err(ListingError::Incomplete(_))));
        assert!(parse(serde_json::json!({"nope": 1})).is_err());
    }
}
