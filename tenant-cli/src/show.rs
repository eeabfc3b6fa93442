//! How the CLI prints what it reads from the registry: escaped, so a hostile key cannot
//! drive the operator's terminal; tables; UTC times; terminal-safe JSON.

use std::borrow::Cow;
use std::io::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Whether `c` is shown escaped: what Rust's `char::escape_debug` escapes (control and other
/// non-printable characters, `\`), except quotes, which are harmless on a terminal.
fn needs_escape(c: char) -> bool {
    c != '"' && c != '\'' && c.escape_debug().len() > 1
}

/// `s` with control and other non-printable characters written as Rust escapes (`\n`,
/// `\u{1b}`) and `\` as `\\`, so a registry value cannot move the cursor, recolour the
/// terminal or forge a line of output.
pub fn escaped(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if needs_escape(c) {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Prints `rows` as columns two spaces apart (the first row is the header).
pub fn print_table<const N: usize>(rows: &[[String; N]]) {
    let mut widths = [0usize; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in rows {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == N {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  "));
            }
        }
        println!("{}", line.trim_end());
    }
}

/// `t` in UTC, to the second, or `None` outside the years 1-9999.
fn utc_datetime(t: SystemTime) -> Option<OffsetDateTime> {
    let nanos = match t.duration_since(UNIX_EPOCH) {
        Ok(after) => i128::try_from(after.as_nanos()).ok()?,
        Err(before) => -i128::try_from(before.duration().as_nanos()).ok()?,
    };
    let t = OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()?;
    t.replace_nanosecond(0).ok()
}

/// `YYYY-MM-DD HH:MM:SS` in UTC.
pub fn utc(t: SystemTime) -> String {
    match utc_datetime(t) {
        Some(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        None => format!("{t:?}"),
    }
}

/// RFC 3339 in UTC, to the second: `2026-04-21T12:00:00Z`.
pub fn rfc3339(t: SystemTime) -> String {
    utc_datetime(t)
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| format!("{t:?}"))
}

/// Writes `value` to stdout as one line of JSON. Strings are exact (a parser gets back what
/// the registry holds), and every character [`escaped`] would escape is written as `\uXXXX`,
/// so the document is as safe on a terminal as the text output.
pub fn print_json<T: Serialize>(value: &T) -> io::Result<()> {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, TerminalSafe);
    value.serialize(&mut serializer).map_err(io::Error::from)?;
    out.write_all(b"\n")?;
    out.flush()
}

/// serde_json's compact format, with non-printable characters `\u`-escaped (serde_json
/// escapes only `"`, `\` and U+0000-U+001F itself).
struct TerminalSafe;

impl serde_json::ser::Formatter for TerminalSafe {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if needs_escape(c) {
                writer.write_all(&fragment.as_bytes()[start..i])?;
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    write!(writer, "\\u{unit:04x}")?;
                }
                start = i + c.len_utf8();
            }
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn control_and_invisible_characters_are_escaped() {
        assert!(matches!(escaped("acme"), Cow::Borrowed("acme")));
        assert_eq!(escaped("café \"q\" 'q'"), "café \"q\" 'q'");
        assert_eq!(escaped("\x1b[31mred"), "\\u{1b}[31mred");
        assert_eq!(escaped("a\nb\tc\r\0"), "a\\nb\\tc\\r\\0");
        assert_eq!(escaped("back\\slash"), "back\\\\slash");
        assert_eq!(escaped("\u{7f}\u{9b}"), "\\u{7f}\\u{9b}");
        // Right-to-left override and zero-width space: invisible, so shown.
        assert_eq!(escaped("\u{202e}x\u{200b}"), "\\u{202e}x\\u{200b}");
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc(UNIX_EPOCH), "1970-01-01 00:00:00");
        let t = UNIX_EPOCH + Duration::from_millis(1_709_210_096_789); // 2024-02-29 12:34:56.789
        assert_eq!(utc(t), "2024-02-29 12:34:56");
        assert_eq!(rfc3339(t), "2024-02-29T12:34:56Z");
        let before = UNIX_EPOCH - Duration::from_secs(86_400);
        assert_eq!(utc(before), "1969-12-31 00:00:00");
    }

    #[test]
    fn json_strings_round_trip_and_carry_no_raw_control_characters() {
        let hostile = "\x1b[31m\nx\u{9b}\u{202e}\\\"\u{1f600}";
        let mut buffer = Vec::new();
        let mut serializer = serde_json::Serializer::with_formatter(&mut buffer, TerminalSafe);
        hostile.serialize(&mut serializer).unwrap();
        let text = String::from_utf8(buffer).unwrap();
        assert!(!text.chars().any(needs_escape_raw), "{text}");
        assert_eq!(serde_json::from_str::<String>(&text).unwrap(), hostile);
        assert!(
            text.contains('\u{1f600}'),
            "printable characters stay: {text}"
        );
    }

    fn needs_escape_raw(c: char) -> bool {
        c != '\\' && needs_escape(c)
    }
}
