//! GitLab's two pagination styles over an already filtered and ordered list.
//! Offset: `page`/`per_page` (default 20, max 100) with `X-Total`, `X-Total-Pages`, `X-Page`,
//! `X-Per-Page`, `X-Next-Page`, `X-Prev-Page` (empty when none) and a `Link` header with
//! prev/next/first/last. Keyset (`pagination=keyset`, `order_by=id`): `id_after`/`id_before`
//! and a `Link` rel="next" only, no totals. This module renders only the page it returns.
//! It never filters or sorts by anything but id (keyset); callers order the list.

use axum::http::StatusCode;
use serde_json::Value;

use crate::error::ApiError;
use crate::routes::request::form_decode;
use crate::routes::{Answer, Ctx, Reply};

const DEFAULT_PER_PAGE: u64 = 20;
const MAX_PER_PAGE: u64 = 100;

/// Whether an endpoint offers keyset pagination in GitLab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyset {
    Offered,
    NotOffered,
}

fn param(ctx: &Ctx, key: &str) -> Option<String> {
    ctx.query
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
}

fn number(ctx: &Ctx, key: &str) -> Option<u64> {
    param(ctx, key).and_then(|v| v.trim().parse().ok())
}

fn per_page(ctx: &Ctx) -> u64 {
    match number(ctx, "per_page") {
        Some(0) | None => DEFAULT_PER_PAGE,
        Some(n) => n.min(MAX_PER_PAGE),
    }
}

/// The request URL with some query parameters replaced (others kept in order).
fn link(ctx: &Ctx, replace: &[(&str, String)]) -> String {
    let mut pairs: Vec<(String, String)> = ctx
        .query
        .iter()
        .filter(|(k, _)| !replace.iter().any(|(r, _)| r == k))
        .cloned()
        .collect();
    pairs.extend(replace.iter().map(|(k, v)| (k.to_string(), v.clone())));
    let query: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    format!("{}{}?{}", ctx.sim.base_url, ctx.path, query.join("&"))
}

fn encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC)
        .to_string()
        .replace("%5F", "_")
        .replace("%2D", "-")
        .replace("%2E", ".")
        .replace("%5B", "[")
        .replace("%5D", "]")
}

/// Answers one page of `items` (already in the endpoint's order), rendering only that page.
pub fn paginate<T>(
    ctx: &Ctx,
    items: Vec<T>,
    keyset: Keyset,
    id_of: impl Fn(&T) -> u64,
    render: impl Fn(&T) -> Value,
) -> Answer {
    if param(ctx, "pagination").as_deref() == Some("keyset") {
        if keyset == Keyset::NotOffered {
            return Err(ApiError::message(
                StatusCode::METHOD_NOT_ALLOWED,
                "Keyset pagination is not yet available for this type of request",
            ));
        }
        return keyset_page(ctx, items, id_of, render);
    }
    offset_page(ctx, items, render)
}

fn offset_page<T>(ctx: &Ctx, items: Vec<T>, render: impl Fn(&T) -> Value) -> Answer {
    let per_page = per_page(ctx);
    let page = number(ctx, "page").filter(|p| *p > 0).unwrap_or(1);
    let total = items.len() as u64;
    let total_pages = total.div_ceil(per_page).max(1);
    let start = ((page - 1) * per_page).min(total) as usize;
    let end = (start + per_page as usize).min(items.len());
    let body: Vec<Value> = items[start..end].iter().map(render).collect();

    let next = (page < total_pages).then(|| page + 1);
    let prev = (page > 1).then(|| (page - 1).min(total_pages));
    let per = ("per_page", per_page.to_string());
    let mut links = Vec::new();
    if let Some(prev) = prev {
        let url = link(ctx, &[("page", prev.to_string()), per.clone()]);
        links.push(format!("<{url}>; rel=\"prev\""));
    }
    if let Some(next) = next {
        let url = link(ctx, &[("page", next.to_string()), per.clone()]);
        links.push(format!("<{url}>; rel=\"next\""));
    }
    let first = link(ctx, &[("page", "1".into()), per.clone()]);
    links.push(format!("<{first}>; rel=\"first\""));
    let last = link(ctx, &[("page", total_pages.to_string()), per]);
    links.push(format!("<{last}>; rel=\"last\""));

    let mut reply = Reply::ok(Value::Array(body));
    reply.headers = vec![
        ("X-Total".into(), total.to_string()),
        ("X-Total-Pages".into(), total_pages.to_string()),
        ("X-Page".into(), page.to_string()),
        ("X-Per-Page".into(), per_page.to_string()),
        (
            "X-Next-Page".into(),
            next.map(|n| n.to_string()).unwrap_or_default(),
        ),
        (
            "X-Prev-Page".into(),
            prev.map(|n| n.to_string()).unwrap_or_default(),
        ),
        ("Link".into(), links.join(", ")),
    ];
    Ok(reply)
}

fn keyset_page<T>(
    ctx: &Ctx,
    mut items: Vec<T>,
    id_of: impl Fn(&T) -> u64,
    render: impl Fn(&T) -> Value,
) -> Answer {
    let order_by = param(ctx, "order_by").unwrap_or_else(|| "id".into());
    if order_by != "id" {
        return Err(ApiError::message(
            StatusCode::METHOD_NOT_ALLOWED,
            "Keyset pagination is not yet available for this type of request",
        ));
    }
    let descending = param(ctx, "sort").map(|s| form_decode(&s)).as_deref() == Some("desc");
    items.sort_by_key(|item| id_of(item));
    if descending {
        items.reverse();
    }
    let after = number(ctx, "id_after");
    let before = number(ctx, "id_before");
    let per_page = per_page(ctx) as usize;
    let mut page: Vec<&T> = items
        .iter()
        .filter(|item| after.is_none_or(|a| id_of(item) > a))
        .filter(|item| before.is_none_or(|b| id_of(item) < b))
        .take(per_page + 1)
        .collect();
    let more = page.len() > per_page;
    page.truncate(per_page);
    let body: Vec<Value> = page.iter().map(|item| render(item)).collect();
    let mut reply = Reply::ok(Value::Array(body));
    reply
        .headers
        .push(("X-Per-Page".into(), per_page.to_string()));
    if let (true, Some(last)) = (more, page.last()) {
        let cursor = if descending {
            [("id_before", id_of(last).to_string())]
        } else {
            [("id_after", id_of(last).to_string())]
        };
        let mut replace: Vec<(&str, String)> = cursor.to_vec();
        replace.push(("per_page", per_page.to_string()));
        let url = link(ctx, &replace);
        reply
            .headers
            .push(("Link".into(), format!("<{url}>; rel=\"next\"")));
    }
    Ok(reply)
}
