//! Splitting a multi-document YAML stream into its documents, by lines.
//!
//! serde-saphyr's multi-document reader stops at the first bad document; hearth must report every
//! document's errors and load the good ones, so each document is parsed on its own. A document
//! starts at a `---` line (column 0, followed by whitespace or end of line) and ends before the next
//! one or after a `...` line; `%` directive lines just before a `---` belong to the document they
//! precede. Each document is parsed alone and the lines serde-saphyr reports are shifted by the
//! document's first line, so positions are those in the whole file (columns need no change).

/// One document of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk<'a> {
    /// 0-based index of the document's first line in the file.
    pub first_line: usize,
    pub text: &'a str,
}

impl Chunk<'_> {
    /// True when the document holds nothing but markers, comments and blank lines.
    pub fn is_blank(&self) -> bool {
        self.text.lines().all(|l| {
            let rest = marker_rest(l, "---")
                .or_else(|| marker_rest(l, "..."))
                .unwrap_or(l)
                .trim();
            rest.is_empty() || rest.starts_with('#')
        })
    }
}

/// If `line` is the document marker `m` (at column 0, then whitespace or end), the rest of it.
fn marker_rest<'a>(line: &'a str, m: &str) -> Option<&'a str> {
    let rest = line.strip_prefix(m)?;
    match rest.chars().next() {
        None => Some(rest),
        Some(c) if c.is_whitespace() => Some(rest),
        Some(_) => None,
    }
}

/// Splits `text` into documents. Never panics; blank documents are kept (callers skip them).
pub fn split_documents(text: &str) -> Vec<Chunk<'_>> {
    let mut chunks = Vec::new();
    // (byte offset, line index) of the current document's start.
    let mut start = (0usize, 0usize);
    // Start of a trailing run of directive lines in the current document, if any.
    let mut directives: Option<(usize, usize)> = None;
    let mut offset = 0usize;
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let next = offset + line.len();
        if marker_rest(line, "---").is_some() {
            let (cut_off, cut_line) = directives.unwrap_or((offset, index));
            if cut_off > start.0 {
                chunks.push(Chunk {
                    first_line: start.1,
                    text: &text[start.0..cut_off],
                });
            }
            start = (cut_off, cut_line);
            directives = None;
        } else if marker_rest(line, "...").is_some() {
            chunks.push(Chunk {
                first_line: start.1,
                text: &text[start.0..next],
            });
            start = (next, index + 1);
            directives = None;
        } else if line.starts_with('%') {
            directives.get_or_insert((offset, index));
        } else if !line.trim().is_empty() && !line.trim_start().starts_with('#') {
            directives = None;
        }
        offset = next;
    }
    if start.0 < text.len() {
        chunks.push(Chunk {
            first_line: start.1,
            text: &text[start.0..],
        });
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn firsts(text: &str) -> Vec<(usize, &str)> {
        split_documents(text)
            .into_iter()
            .map(|c| (c.first_line, c.text))
            .collect()
    }

    #[test]
    fn splits_at_marker_lines() {
        let t = "a: 1\n---\nb: 2\n--- # c\nc: 3\n";
        assert_eq!(
            firsts(t),
            vec![(0, "a: 1\n"), (1, "---\nb: 2\n"), (3, "--- # c\nc: 3\n")]
        );
    }

    #[test]
    fn leading_marker_and_no_trailing_newline() {
        assert_eq!(firsts("---\na: 1"), vec![(0, "---\na: 1")]);
        assert_eq!(firsts(""), Vec::<(usize, &str)>::new());
    }

    #[test]
    fn not_markers() {
        // `----`, `---x` and an indented `---` are content, not markers.
        let t = "a: |\n  ---\nb: ---x\n----: 1\n";
        assert_eq!(firsts(t).len(), 1);
    }

    #[test]
    fn document_end_and_directives() {
        let t = "a: 1\n...\n%YAML 1.2\n---\nb: 2\n";
        assert_eq!(
            firsts(t),
            vec![(0, "a: 1\n...\n"), (2, "%YAML 1.2\n---\nb: 2\n")]
        );
    }

    #[test]
    fn blank_documents() {
        let cs = split_documents("# head\n---\n--- # x\n\n...\n---\na: 1\n");
        let blank: Vec<bool> = cs.iter().map(Chunk::is_blank).collect();
        assert_eq!(blank, vec![true, true, true, false]);
    }
}
