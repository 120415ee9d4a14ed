//! HTML text: escaping and the page frame. Every value that comes from a forge, a bundle or a user
//! goes through [`esc`] (text and attribute values alike: `& < > " '` are all replaced), so a group
//! called `<script>` is shown as those characters and never runs.

use std::fmt::{self, Display, Write};

/// A value to write into HTML text or a quoted attribute, escaped.
pub struct Esc<'a>(pub &'a str);

impl Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(at) = rest.find(['&', '<', '>', '"', '\'']) {
            f.write_str(&rest[..at])?;
            f.write_str(match rest.as_bytes()[at] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                _ => "&#39;",
            })?;
            rest = &rest[at + 1..];
        }
        f.write_str(rest)
    }
}

/// Shorthand for [`Esc`].
pub fn esc(s: &str) -> Esc<'_> {
    Esc(s)
}

/// A link to a record on its forge when the URL is http(s) (never `javascript:` or another scheme a
/// forge could slip in), else the title alone.
pub fn record_link(url: Option<&str>, title: Option<&str>) -> String {
    let title = title.filter(|t| !t.is_empty());
    match (
        url.filter(|u| u.starts_with("https://") || u.starts_with("http://")),
        title,
    ) {
        (Some(u), t) => format!(
            r#"<a href="{}" rel="noreferrer noopener">{}</a>"#,
            esc(u),
            esc(t.unwrap_or(u))
        ),
        (None, Some(t)) => esc(t).to_string(),
        (None, None) => "—".to_string(),
    }
}

/// What the page's frame needs besides the content.
pub struct Frame<'a> {
    pub title: &'a str,
    /// The per-session form token of the sign-out form; None on the sign-in page.
    pub csrf: Option<&'a str>,
    /// Where the destination is, shown in the header.
    pub destination: Option<&'a str>,
    /// Reload the page every few seconds when scripts are off (something is running).
    pub refresh_without_script: bool,
}

/// The whole document around `main`.
pub fn page(frame: &Frame<'_>, main: &str) -> String {
    let mut out = String::with_capacity(main.len() + 2048);
    let _ = write!(
        out,
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · appliance</title>
<link rel="stylesheet" href="/assets/ui.css">
<script src="/assets/ui.js" defer></script>
"#,
        title = esc(frame.title)
    );
    if frame.refresh_without_script {
        out.push_str("<noscript><meta http-equiv=\"refresh\" content=\"5\"></noscript>\n");
    }
    out.push_str("</head>\n<body>\n<a class=\"skip\" href=\"#main\">Skip to content</a>\n<header class=\"top\">\n<a class=\"brand\" href=\"/\">appliance</a>\n");
    if let Some(dest) = frame.destination {
        let _ = writeln!(
            out,
            "<span class=\"dest\">Destination: <code>{}</code></span>",
            esc(dest)
        );
    }
    if let Some(csrf) = frame.csrf {
        let _ = writeln!(
            out,
            r#"<form method="post" action="/logout" class="logout"><input type="hidden" name="csrf" value="{}"><button type="submit">Sign out</button></form>"#,
            esc(csrf)
        );
    }
    out.push_str("</header>\n<main id=\"main\">\n");
    out.push_str(main);
    out.push_str("</main>\n</body>\n</html>\n");
    out
}

/// A message box: `role="alert"` for an error, `role="status"` otherwise.
pub fn notice(error: bool, text: &str) -> String {
    if error {
        format!(
            "<p class=\"notice error\" role=\"alert\"><strong>Not done:</strong> {}</p>\n",
            esc(text)
        )
    } else {
        format!("<p class=\"notice ok\" role=\"status\">{}</p>\n", esc(text))
    }
}

/// A byte count for people: `1.5 MiB`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// A stored time (`2021-06-18T09:47:37.390Z`) as people read it: `2021-06-18 09:47:37 UTC`, inside a
/// `<time>` element that keeps the exact value.
pub fn time(iso: &str) -> String {
    let shown = iso
        .get(..19)
        .map(|s| format!("{} UTC", s.replace('T', " ")))
        .unwrap_or_else(|| iso.to_string());
    format!("<time datetime=\"{}\">{}</time>", esc(iso), esc(&shown))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_special_character_is_escaped() {
        assert_eq!(
            esc(r#"<script>alert("x")</script> & 'y'"#).to_string(),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
        assert_eq!(esc("plain/path-1").to_string(), "plain/path-1");
        assert_eq!(esc("é<ü").to_string(), "é&lt;ü");
    }

    #[test]
    fn only_http_links_are_links() {
        assert_eq!(
            record_link(Some("javascript:alert(1)"), Some("<b>")),
            "&lt;b&gt;"
        );
        assert_eq!(
            record_link(Some("https://x/a?b=1&c=\"2\""), Some("t<")),
            r#"<a href="https://x/a?b=1&amp;c=&quot;2&quot;" rel="noreferrer noopener">t&lt;</a>"#
        );
        assert_eq!(record_link(None, None), "—");
    }

    #[test]
    fn sizes_and_times_read_well() {
        assert_eq!(size(512), "512 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(
            time("2021-06-18T09:47:37.390Z"),
            "<time datetime=\"2021-06-18T09:47:37.390Z\">2021-06-18 09:47:37 UTC</time>"
        );
    }
}
