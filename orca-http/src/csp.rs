//! `Content-Security-Policy` for every answer: API answers (JSON, text) load nothing and may
//! not be framed; the API docs page (Swagger UI, all inline) may run exactly its own inline
//! scripts (by hash) and talk to this origin only.

use base64::Engine;
use poem::http::HeaderValue;
use poem::{Endpoint, IntoResponse, Request, Response};
use sha2::{Digest, Sha256};

/// The policy of API answers: nothing may load, nothing may frame them.
pub(crate) const API: &str =
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// The `sha256-…` sources of the inline `<script>` elements of `html`, in order. A script
/// ends where a browser ends it: at the first `</script` (any case).
fn inline_script_hashes(html: &str) -> Vec<String> {
    let lower = html.to_ascii_lowercase();
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(open) = lower[at..].find("<script").map(|i| at + i) {
        let Some(body) = lower[open..].find('>').map(|i| open + i + 1) else {
            break;
        };
        let end = lower[body..]
            .find("</script")
            .map_or(html.len(), |i| body + i);
        let digest = Sha256::digest(&html.as_bytes()[body..end]);
        out.push(format!(
            "'sha256-{}'",
            base64::engine::general_purpose::STANDARD.encode(digest)
        ));
        at = end;
    }
    out
}

/// The policy of an HTML page whose scripts are all inline (the Swagger UI): those scripts by
/// hash, inline styles, images and fonts from this origin or `data:`, requests ("Try it out")
/// to this origin; never framed.
pub(crate) fn for_inline_page(html: &str) -> String {
    let scripts = inline_script_hashes(html);
    let scripts = if scripts.is_empty() {
        "'none'".to_string()
    } else {
        scripts.join(" ")
    };
    format!(
        "default-src 'none'; script-src {scripts}; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; \
         form-action 'self'; frame-ancestors 'none'"
    )
}

/// Serve `ep` (the docs pages) with [`for_inline_page`] on its HTML answers.
pub(crate) fn docs<E: Endpoint + 'static>(ep: E) -> impl Endpoint<Output = Response> {
    poem::endpoint::EndpointExt::around(ep, |ep, req: Request| async move {
        let resp = ep.call(req).await?.into_response();
        let html = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/html"));
        if !html {
            return Ok(resp);
        }
        let (parts, body) = resp.into_parts();
        let bytes = body.into_vec().await?;
        let policy = for_inline_page(&String::from_utf8_lossy(&bytes));
        let mut resp = Response::from_parts(parts, bytes.into());
        if let Ok(v) = HeaderValue::from_str(&policy) {
            resp.headers_mut().insert("content-security-policy", v);
        }
        Ok(resp)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_scripts_are_hashed_as_browsers_cut_them() {
        let html = r#"<html><head><SCRIPT charset="UTF-8">var a = 1;</Script></head>
            <body><script>go()</script ><p>x</p></body></html>"#;
        let h = inline_script_hashes(html);
        let b64 = |s: &str| {
            format!(
                "'sha256-{}'",
                base64::engine::general_purpose::STANDARD.encode(Sha256::digest(s.as_bytes()))
            )
        };
        assert_eq!(h, vec![b64("var a = 1;"), b64("go()")]);
        let p = for_inline_page(html);
        assert!(p.contains("frame-ancestors 'none'"), "{p}");
        assert!(p.contains(&b64("go()")), "{p}");
        assert!(!p.contains("unsafe-eval"), "{p}");
        assert!(for_inline_page("<p>no scripts</p>").contains("script-src 'none'"));
    }
}
