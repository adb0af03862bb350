//! Plain-text tables for people.
//!
//! Cells often hold plugin text (names, descriptions, metric names), so every
//! cell is escaped (see [`crate::text`]) and padded by hand: `format!`'s
//! width argument panics past 65,535, and a plugin chooses how wide its
//! strings are.

use crate::text;

/// Renders rows under a header, columns padded; numeric-looking cells align
/// right. Rows shorter than the header are padded with empty cells; cells
/// beyond it are dropped.
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let escaped = |cells: &mut dyn Iterator<Item = &str>| -> Vec<(String, usize)> {
        let mut row: Vec<(String, usize)> = cells
            .take(header.len())
            .map(|c| {
                let c = text::escape(c).into_owned();
                let width = c.chars().count();
                (c, width)
            })
            .collect();
        row.resize(header.len(), (String::new(), 0));
        row
    };
    let head = escaped(&mut header.iter().copied());
    let body: Vec<_> = rows
        .iter()
        .map(|r| escaped(&mut r.iter().map(String::as_str)))
        .collect();
    let mut widths: Vec<usize> = head.iter().map(|(_, w)| *w).collect();
    for row in &body {
        for (i, (_, w)) in row.iter().enumerate() {
            widths[i] = widths[i].max(*w);
        }
    }
    let line = |cells: &[(String, usize)]| {
        let mut out = String::new();
        for (i, (cell, width)) in cells.iter().enumerate() {
            if i > 0 {
                out.push_str("  ");
            }
            let pad = " ".repeat(widths[i] - width);
            if cell.parse::<f64>().is_ok() {
                out.push_str(&pad);
                out.push_str(cell);
            } else {
                out.push_str(cell);
                out.push_str(&pad);
            }
        }
        out.truncate(out.trim_end().len());
        out.push('\n');
        out
    };
    let mut out = line(&head);
    out.push_str(
        &widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("  "),
    );
    out.push('\n');
    for row in &body {
        out.push_str(&line(row));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::{arbitrary::Rng, has_unsafe};

    #[test]
    fn pads_and_aligns() {
        let t = render(
            &["name", "value"],
            &[
                vec!["a".into(), "1.5".into()],
                vec!["long name".into(), "x".into()],
            ],
        );
        assert_eq!(
            t,
            "name       value\n---------  -----\na            1.5\nlong name  x\n"
        );
    }

    #[test]
    fn a_cell_wider_than_65535_characters_does_not_panic() {
        let wide = "w".repeat(100_000);
        let t = render(
            &["k", "v"],
            &[
                vec!["name".into(), wide.clone()],
                vec!["1".into(), "2".into()],
            ],
        );
        assert!(t.contains(&wide));
        assert_eq!(t.lines().count(), 4);
    }

    #[test]
    fn a_newline_cannot_forge_a_row_nor_an_escape_reach_the_terminal() {
        let t = render(
            &["field", "value"],
            &[vec!["name".into(), "x\nimports  (none)\u{1b}[8m".into()]],
        );
        assert_eq!(t.lines().count(), 3, "{t}");
        assert!(t.contains("x\\nimports  (none)\\u{1b}[8m"), "{t}");
    }

    /// Property: any strings, any shape of rows: no panic, exactly one line
    /// per row, and nothing a terminal would interpret.
    #[test]
    fn arbitrary_plugin_strings_render_safely() {
        let mut rng = Rng::new(0x1e14);
        for case in 0..300 {
            let columns = 1 + rng.below(5) as usize;
            let header: Vec<String> = (0..columns).map(|_| rng.string(12)).collect();
            let header: Vec<&str> = header.iter().map(String::as_str).collect();
            let rows: Vec<Vec<String>> = (0..rng.below(6))
                .map(|_| {
                    (0..rng.below(columns as u64 + 2))
                        .map(|_| rng.string(40))
                        .collect()
                })
                .collect();
            let t = render(&header, &rows);
            assert_eq!(t.lines().count(), 2 + rows.len(), "case {case}");
            assert!(!has_unsafe(&t, Some('\n')), "case {case}: {t:?}");
        }
    }
}
