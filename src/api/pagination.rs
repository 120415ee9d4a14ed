//! GitLab's offset pagination: `page` and `per_page` in, `X-Total`, `X-Total-Pages`, `X-Page`,
//! `X-Per-Page`, `X-Next-Page`, `X-Prev-Page` and an RFC 8288 `Link` header out. Clients such as
//! python-gitlab follow `Link` (rel="next"), so its URLs are absolute, built from the request's own
//! Host, and keep every other query parameter of the request.

use axum::http::header::{HOST, LINK};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Uri};

pub const DEFAULT_PER_PAGE: u64 = 20;
/// Kaminari's `max_per_page` in GitLab: larger values are clamped, not refused.
pub const MAX_PER_PAGE: u64 = 100;

/// The decoded query string of a request, in order, as (name, value) pairs.
pub type Query = Vec<(String, String)>;

pub fn parse_query(raw: Option<&str>) -> Query {
    url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The last value of a query parameter (Rack keeps the last of repeated plain keys).
pub fn last<'q>(query: &'q Query, name: &str) -> Option<&'q str> {
    query
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageRequest {
    pub page: u64,
    pub per_page: u64,
}

impl Default for PageRequest {
    fn default() -> Self {
        PageRequest {
            page: 1,
            per_page: DEFAULT_PER_PAGE,
        }
    }
}

/// Reads `page` and `per_page` as GitLab does: integers (else "`page` is invalid"), `per_page=0`
/// refused, a page below 1 means the first, a negative `per_page` the default, above 100 means 100.
/// Grape-style messages are appended to `errors`.
pub fn page_request(query: &Query, errors: &mut Vec<String>) -> PageRequest {
    let mut req = PageRequest::default();
    if let Some(raw) = last(query, "page") {
        match raw.parse::<i64>() {
            Ok(p) => req.page = p.max(1) as u64,
            Err(_) => errors.push("page is invalid".into()),
        }
    }
    if let Some(raw) = last(query, "per_page") {
        match raw.parse::<i64>() {
            Ok(0) => errors.push("per_page has a value not allowed".into()),
            Ok(n) if n < 0 => {}
            Ok(n) => req.per_page = (n as u64).min(MAX_PER_PAGE),
            Err(_) => errors.push("per_page is invalid".into()),
        }
    }
    req
}

/// What one page of a listing tells the client about the others.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageInfo {
    pub page: u64,
    pub per_page: u64,
    pub total: u64,
    /// At least 1, as GitLab reports for an empty listing.
    pub total_pages: u64,
    pub next: Option<u64>,
    pub prev: Option<u64>,
}

impl PageInfo {
    pub fn new(req: PageRequest, total: u64) -> PageInfo {
        let per_page = req.per_page.max(1);
        let total_pages = total.div_ceil(per_page).max(1);
        let page = req.page.max(1);
        let in_range = page <= total_pages;
        PageInfo {
            page,
            per_page,
            total,
            total_pages,
            next: (in_range && page < total_pages).then(|| page + 1),
            prev: (in_range && page > 1).then(|| page - 1),
        }
    }
}

/// `scheme://host/path` of the request, the base of every pagination link. The scheme is https only
/// when a reverse proxy in front says so.
pub fn request_base(headers: &HeaderMap, uri: &Uri) -> String {
    let scheme = match headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
    {
        Some(p) if p.eq_ignore_ascii_case("https") => "https",
        _ => "http",
    };
    let host = headers
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| uri.authority().map(|a| a.to_string()))
        .unwrap_or_else(|| "localhost".into());
    format!("{scheme}://{host}{}", uri.path())
}

/// The URL of another page: the request's query with `page` and `per_page` replaced, encoded and
/// sorted as Rails' `to_query` does.
fn page_href(base: &str, query: &Query, page: u64, per_page: u64) -> String {
    let page = page.to_string();
    let per_page = per_page.to_string();
    let mut pairs: Vec<String> = query
        .iter()
        .filter(|(k, _)| k != "page" && k != "per_page")
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain([("page", page.as_str()), ("per_page", per_page.as_str())])
        .map(|(k, v)| {
            let k: String = url::form_urlencoded::byte_serialize(k.as_bytes()).collect();
            let v: String = url::form_urlencoded::byte_serialize(v.as_bytes()).collect();
            format!("{k}={v}")
        })
        .collect();
    pairs.sort();
    format!("{base}?{}", pairs.join("&"))
}

/// The pagination headers of a page, exactly as GitLab sends them (empty `X-Next-Page` and
/// `X-Prev-Page` when there is none; `Link` in the order prev, next, first, last).
pub fn headers(base: &str, query: &Query, info: &PageInfo) -> HeaderMap {
    let mut h = HeaderMap::new();
    let opt = |v: Option<u64>| v.map(|n| n.to_string()).unwrap_or_default();
    let numbers = [
        ("x-total", info.total.to_string()),
        ("x-total-pages", info.total_pages.to_string()),
        ("x-page", info.page.to_string()),
        ("x-per-page", info.per_page.to_string()),
        ("x-next-page", opt(info.next)),
        ("x-prev-page", opt(info.prev)),
    ];
    for (name, value) in numbers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(HeaderName::from_static(name), v);
        }
    }
    let mut links = Vec::new();
    if let Some(p) = info.prev {
        links.push(format!(
            "<{}>; rel=\"prev\"",
            page_href(base, query, p, info.per_page)
        ));
    }
    if let Some(n) = info.next {
        links.push(format!(
            "<{}>; rel=\"next\"",
            page_href(base, query, n, info.per_page)
        ));
    }
    links.push(format!(
        "<{}>; rel=\"first\"",
        page_href(base, query, 1, info.per_page)
    ));
    links.push(format!(
        "<{}>; rel=\"last\"",
        page_href(base, query, info.total_pages, info.per_page)
    ));
    // A Host header that cannot be repeated in a header value leaves the links out, not the page.
    if let Ok(v) = HeaderValue::from_str(&links.join(", ")) {
        h.insert(LINK, v);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Query {
        parse_query(Some(s))
    }

    #[test]
    fn defaults_clamping_and_grape_errors() {
        let mut errors = Vec::new();
        assert_eq!(
            page_request(&q(""), &mut errors),
            PageRequest {
                page: 1,
                per_page: 20
            }
        );
        assert_eq!(
            page_request(&q("page=3&per_page=500"), &mut errors),
            PageRequest {
                page: 3,
                per_page: 100
            }
        );
        assert_eq!(
            page_request(&q("page=0&per_page=-5"), &mut errors),
            PageRequest {
                page: 1,
                per_page: 20
            }
        );
        assert!(errors.is_empty(), "{errors:?}");
        page_request(&q("page=x&per_page=0"), &mut errors);
        assert_eq!(
            errors,
            ["page is invalid", "per_page has a value not allowed"]
        );
        errors.clear();
        page_request(&q("per_page=1.5"), &mut errors);
        assert_eq!(errors, ["per_page is invalid"]);
    }

    #[test]
    fn page_info_in_the_middle_at_the_end_and_past_it() {
        let mid = PageInfo::new(
            PageRequest {
                page: 2,
                per_page: 2,
            },
            5,
        );
        assert_eq!((mid.total_pages, mid.next, mid.prev), (3, Some(3), Some(1)));
        let end = PageInfo::new(
            PageRequest {
                page: 3,
                per_page: 2,
            },
            5,
        );
        assert_eq!((end.next, end.prev), (None, Some(2)));
        let past = PageInfo::new(
            PageRequest {
                page: 9,
                per_page: 2,
            },
            5,
        );
        assert_eq!((past.next, past.prev), (None, None));
        let empty = PageInfo::new(PageRequest::default(), 0);
        assert_eq!((empty.total_pages, empty.next, empty.prev), (1, None, None));
    }

    #[test]
    fn headers_match_gitlab_and_links_keep_other_parameters() {
        let query = q("status=finished&per_page=2&page=2&sort=asc");
        let info = PageInfo::new(
            PageRequest {
                page: 2,
                per_page: 2,
            },
            5,
        );
        let h = headers(
            "http://appliance.local:8080/api/v4/bulk_imports",
            &query,
            &info,
        );
        let get = |n: &str| h.get(n).unwrap().to_str().unwrap().to_string();
        assert_eq!(get("x-total"), "5");
        assert_eq!(get("x-total-pages"), "3");
        assert_eq!(get("x-page"), "2");
        assert_eq!(get("x-per-page"), "2");
        assert_eq!(get("x-next-page"), "3");
        assert_eq!(get("x-prev-page"), "1");
        let base = "http://appliance.local:8080/api/v4/bulk_imports";
        assert_eq!(
            get("link"),
            format!(
                "<{base}?page=1&per_page=2&sort=asc&status=finished>; rel=\"prev\", \
                 <{base}?page=3&per_page=2&sort=asc&status=finished>; rel=\"next\", \
                 <{base}?page=1&per_page=2&sort=asc&status=finished>; rel=\"first\", \
                 <{base}?page=3&per_page=2&sort=asc&status=finished>; rel=\"last\""
            )
        );
    }

    #[test]
    fn a_single_page_has_empty_next_and_prev() {
        let info = PageInfo::new(PageRequest::default(), 3);
        let h = headers("http://h/api/v4/bulk_imports", &Vec::new(), &info);
        assert_eq!(h.get("x-next-page").unwrap(), "");
        assert_eq!(h.get("x-prev-page").unwrap(), "");
        assert_eq!(
            h.get("link").unwrap(),
            "<http://h/api/v4/bulk_imports?page=1&per_page=20>; rel=\"first\", \
             <http://h/api/v4/bulk_imports?page=1&per_page=20>; rel=\"last\""
        );
    }

    #[test]
    fn the_base_comes_from_the_host_header_and_a_proxy_scheme() {
        let uri: Uri = "/api/v4/bulk_imports?page=2".parse().unwrap();
        let mut h = HeaderMap::new();
        h.insert(HOST, HeaderValue::from_static("mig.example.com:3000"));
        assert_eq!(
            request_base(&h, &uri),
            "http://mig.example.com:3000/api/v4/bulk_imports"
        );
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert_eq!(
            request_base(&h, &uri),
            "https://mig.example.com:3000/api/v4/bulk_imports"
        );
    }

    #[test]
    fn link_values_are_escaped() {
        let info = PageInfo::new(PageRequest::default(), 1);
        let h = headers("http://h/x", &q("search=a+b%26c"), &info);
        let link = h.get("link").unwrap().to_str().unwrap();
        assert!(link.contains("search=a+b%26c"), "{link}");
    }
}
