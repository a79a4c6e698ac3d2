//! Aligned columns for people, JSON for programs.

use serde_json::Value;

/// Print rows under headers, columns padded to their widest cell (the last column unpadded).
pub fn print(headers: &[&str], rows: &[Vec<String>]) {
    print!("{}", render(headers, rows));
}

/// The table as text.
pub fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let n = cells.len();
        let mut s = String::new();
        for (i, c) in cells.into_iter().enumerate() {
            if i + 1 == n {
                s.push_str(c);
            } else {
                s.push_str(c);
                s.push_str(&" ".repeat(widths[i] - c.chars().count() + 2));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(headers.to_vec());
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

/// Print a JSON value, pretty.
pub fn json(v: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
    );
}

/// A string field, or `-`.
pub fn s(v: &Value, key: &str) -> String {
    match &v[key] {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// A timestamp field shortened to seconds (`2025-01-02 03:04:05`), or `-`.
pub fn time(v: &Value, key: &str) -> String {
    match v[key].as_str() {
        Some(t) => chrono::DateTime::parse_from_rfc3339(t)
            .map(|d| {
                d.with_timezone(&chrono::Utc)
                    .format("%Y-%m-%d %H:%M:%S")
                    .to_string()
            })
            .unwrap_or_else(|_| t.to_string()),
        None => "-".into(),
    }
}

/// Seconds between two timestamp fields, like `1.2s`, or `-`.
pub fn duration(v: &Value, from: &str, to: &str) -> String {
    let parse = |k: &str| {
        v[k].as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
    };
    match (parse(from), parse(to)) {
        (Some(a), Some(b)) => {
            let ms = (b - a).num_milliseconds().max(0);
            if ms < 10_000 {
                format!("{:.2}s", ms as f64 / 1000.0)
            } else {
                format!("{}s", ms / 1000)
            }
        }
        _ => "-".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align() {
        let t = render(
            &["NAME", "STATUS"],
            &[
                vec!["local".into(), "ok".into()],
                vec!["a-much-longer-name".into(), "failed".into()],
            ],
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "NAME                STATUS");
        assert_eq!(lines[1], "local               ok");
        assert_eq!(lines[2], "a-much-longer-name  failed");
    }

    #[test]
    fn fields() {
        let v = serde_json::json!({"a": "x", "n": 3, "t0": "2025-01-01T00:00:00Z", "t1": "2025-01-01T00:00:01.5Z"});
        assert_eq!(s(&v, "a"), "x");
        assert_eq!(s(&v, "n"), "3");
        assert_eq!(s(&v, "missing"), "-");
        assert_eq!(time(&v, "t0"), "2025-01-01 00:00:00");
        assert_eq!(duration(&v, "t0", "t1"), "1.50s");
    }
}
