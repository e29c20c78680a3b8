//! Text helpers shared by the processors: tokens and stems, dates in many formats, amounts
//! with either decimal separator, whitespace normalisation, and string similarity.

use std::collections::HashSet;
use std::sync::OnceLock;

use regex::Regex;

/// English function words and the boilerplate of patents and tickets, never searched for.
const STOPWORDS: &[&str] = &[
    "a",
    "about",
    "above",
    "after",
    "again",
    "all",
    "also",
    "am",
    "an",
    "and",
    "any",
    "are",
    "as",
    "at",
    "be",
    "been",
    "being",
    "between",
    "both",
    "but",
    "by",
    "can",
    "could",
    "did",
    "do",
    "does",
    "each",
    "for",
    "from",
    "further",
    "had",
    "has",
    "have",
    "having",
    "he",
    "her",
    "here",
    "hi",
    "his",
    "how",
    "i",
    "if",
    "in",
    "into",
    "is",
    "it",
    "its",
    "itself",
    "may",
    "me",
    "more",
    "most",
    "my",
    "no",
    "nor",
    "not",
    "of",
    "off",
    "on",
    "once",
    "one",
    "only",
    "or",
    "other",
    "our",
    "out",
    "over",
    "own",
    "same",
    "she",
    "should",
    "so",
    "some",
    "such",
    "than",
    "that",
    "the",
    "their",
    "them",
    "then",
    "there",
    "these",
    "they",
    "this",
    "those",
    "through",
    "thus",
    "to",
    "too",
    "under",
    "until",
    "up",
    "upon",
    "very",
    "was",
    "we",
    "were",
    "what",
    "when",
    "where",
    "which",
    "while",
    "who",
    "whom",
    "why",
    "will",
    "with",
    "would",
    "you",
    "your",
    "wherein",
    "whereby",
    "said",
    "comprising",
    "comprises",
    "comprise",
    "claim",
    "claims",
    "invention",
    "present",
    "provided",
    "providing",
    "least",
    "plurality",
    "first",
    "second",
    "third",
    "least",
    "within",
    "thereof",
    "therein",
    "via",
    "use",
    "used",
    "using",
    "least",
    "please",
    "thanks",
    "thank",
    "regards",
    "dear",
];

fn stopwords() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| STOPWORDS.iter().copied().collect())
}

pub fn is_stopword(word: &str) -> bool {
    stopwords().contains(word)
}

/// A light suffix-stripping stemmer (plural and verb endings), enough to join "cells" with
/// "cell" and "cooling" with "cooled" without a dictionary.
pub fn stem(word: &str) -> String {
    let w = word;
    let n = w.len();
    if n <= 3 || !w.is_ascii() {
        return w.to_string();
    }
    for (suffix, keep, replace) in [
        ("ational", 7, "ate"),
        ("ization", 7, "ize"),
        ("iveness", 7, "ive"),
        ("fulness", 7, "ful"),
        ("ousness", 7, "ous"),
        ("ements", 6, ""),
        ("ement", 5, ""),
        ("ments", 5, ""),
        ("ment", 4, ""),
        ("ings", 4, ""),
        ("ing", 3, ""),
        ("ies", 3, "y"),
        ("ied", 3, "y"),
        ("sses", 4, "ss"),
        ("edly", 4, ""),
        ("ed", 2, ""),
        ("ly", 2, ""),
        ("es", 2, "e"),
        ("s", 1, ""),
    ] {
        if let Some(stem) = w.strip_suffix(suffix) {
            let _ = keep;
            if stem.len() < 3 || (suffix == "s" && (stem.ends_with('s') || stem.ends_with('u'))) {
                continue;
            }
            let mut out = format!("{stem}{replace}");
            // "cooled" -> "cool", "stopped" -> "stop", "es" on "boxes" -> "boxe" -> "box".
            if suffix == "es"
                && (stem.ends_with('x') || stem.ends_with("ch") || stem.ends_with("sh"))
            {
                out = stem.to_string();
            }
            let bytes = out.as_bytes();
            if (suffix == "ed" || suffix == "ing")
                && bytes.len() >= 2
                && bytes[bytes.len() - 1] == bytes[bytes.len() - 2]
                && !matches!(bytes[bytes.len() - 1], b'l' | b's' | b'z')
            {
                out.pop();
            }
            return out;
        }
    }
    w.to_string()
}

/// Lower-cased alphanumeric words of `text` (Unicode letters kept).
pub fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.to_lowercase())
}

/// Search terms: words without stopwords or lone digits, stemmed.
pub fn terms(text: &str) -> Vec<String> {
    words(text)
        .filter(|w| w.chars().count() > 1 && !is_stopword(w))
        .filter(|w| !w.chars().all(|c| c.is_ascii_digit()) || w.len() >= 3)
        .map(|w| stem(&w))
        .collect()
}

/// Collapses runs of spaces and tabs, trims lines, joins words hyphenated across line breaks,
/// replaces typographic quotes and dashes, and drops control characters.
pub fn normalise(text: &str) -> String {
    let mapped: String = text
        .chars()
        .filter_map(|c| match c {
            '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{2032}' => Some('\''),
            '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{2033}' => Some('"'),
            '\u{2010}' | '\u{2011}' | '\u{2012}' | '\u{2013}' | '\u{2212}' => Some('-'),
            '\u{2014}' => Some('-'),
            '\u{00A0}' | '\u{2007}' | '\u{202F}' | '\t' => Some(' '),
            '\u{00AD}' | '\u{200B}' | '\u{FEFF}' => None,
            '\u{FB01}' => Some('\u{1}'),
            '\u{FB02}' => Some('\u{2}'),
            '\r' | '\n' => Some(c),
            c if c.is_control() && c != '\u{c}' => None,
            c => Some(c),
        })
        .collect::<String>()
        .replace('\u{1}', "fi")
        .replace('\u{2}', "fl")
        .replace("\r\n", "\n")
        .replace('\r', "\n");
    let mut lines: Vec<String> = Vec::new();
    for line in mapped.split('\n') {
        let line = line
            .split(' ')
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        if let Some(prev) = lines.last_mut() {
            let joinable = prev.ends_with('-')
                && prev.len() > 1
                && prev[..prev.len() - 1].ends_with(|c: char| c.is_lowercase())
                && line.starts_with(|c: char| c.is_lowercase());
            if joinable {
                prev.pop();
                let (first, rest) = line.split_once(' ').unwrap_or((line.as_str(), ""));
                prev.push_str(first);
                lines.push(rest.to_string());
                continue;
            }
        }
        lines.push(line);
    }
    // At most one blank line in a row; none at the ends.
    let mut out: Vec<&str> = Vec::new();
    for line in &lines {
        if line.is_empty() && out.last().is_none_or(|l: &&str| l.is_empty()) {
            continue;
        }
        out.push(line);
    }
    while out.last() == Some(&"") {
        out.pop();
    }
    out.join("\n")
}

fn month_number(name: &str) -> Option<u32> {
    let lower = name.to_lowercase();
    let lower = lower.trim_end_matches('.');
    const MONTHS: &[(&str, u32)] = &[
        ("jan", 1),
        ("feb", 2),
        ("fév", 2),
        ("fev", 2),
        ("mar", 3),
        ("mär", 3),
        ("maa", 3),
        ("apr", 4),
        ("avr", 4),
        ("may", 5),
        ("mai", 5),
        ("mei", 5),
        ("jun", 6),
        ("juin", 6),
        ("jul", 7),
        ("juil", 7),
        ("aug", 8),
        ("août", 8),
        ("aou", 8),
        ("sep", 9),
        ("oct", 10),
        ("okt", 10),
        ("nov", 11),
        ("dec", 12),
        ("dez", 12),
        ("déc", 12),
    ];
    // Longest prefix first so "juil" beats "jul" and "juin" beats "jun".
    let mut best: Option<(usize, u32)> = None;
    for (prefix, number) in MONTHS {
        if lower.starts_with(prefix) && best.is_none_or(|(len, _)| prefix.len() > len) {
            best = Some((prefix.len(), *number));
        }
    }
    // "mars" and "march", but not "mark"; "maart".
    if lower.len() > 3
        && lower.starts_with("mar")
        && !["march", "mars", "marz"]
            .iter()
            .any(|m| lower.starts_with(m))
    {
        return None;
    }
    best.map(|(_, n)| n)
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

fn full_year(y: i32) -> i32 {
    match y {
        0..=69 => 2000 + y,
        70..=99 => 1900 + y,
        _ => y,
    }
}

/// `YYYY-MM-DD` when the parts make a real date between 1900 and 2099.
pub fn iso_date(year: i32, month: u32, day: u32) -> Option<String> {
    let year = full_year(year);
    if !(1900..=2099).contains(&year) || !(1..=12).contains(&month) {
        return None;
    }
    if day == 0 || day > days_in_month(year, month) {
        return None;
    }
    Some(format!("{year:04}-{month:02}-{day:02}"))
}

/// A date found in text: where it starts and its ISO form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundDate {
    pub start: usize,
    pub iso: String,
}

fn date_regexes() -> &'static [Regex; 4] {
    static RES: OnceLock<[Regex; 4]> = OnceLock::new();
    RES.get_or_init(|| {
        let month = r"(jan(?:uary|vier|uari|uar)?|feb(?:ruary|ruari|ruar)?|f[ée]v(?:rier)?|mar(?:ch|s|z)?|m[äa]a?rz?t?|apr(?:il)?|avr(?:il)?|ma[iy]|mei|june?|juin|juni|july?|juil(?:let)?|juli|aug(?:ust|ustus)?|ao[uû]t|sep(?:t|tember|tembre)?|o[ck]t(?:ober|obre)?|nov(?:ember|embre)?|d[eé][cz](?:ember|embre)?)\.?";
        [
            Regex::new(r"\b((?:19|20)\d{2})[-/.](\d{1,2})[-/.](\d{1,2})\b").unwrap(),
            Regex::new(r"\b(\d{1,2})\s?[-/.]\s?(\d{1,2})\s?[-/.]\s?(\d{4}|\d{2})\b").unwrap(),
            Regex::new(&format!(
                r"(?i)\b(\d{{1,2}})(?:st|nd|rd|th|er)?[\s\-/.,]{{0,3}}{month}[\s\-/.,']{{0,3}}(\d{{4}}|\d{{2}})\b"
            ))
            .unwrap(),
            Regex::new(&format!(
                r"(?i)\b{month}[\s\-/.]{{0,3}}(\d{{1,2}})(?:st|nd|rd|th)?,?[\s\-/.]{{1,3}}(\d{{4}})\b"
            ))
            .unwrap(),
        ]
    })
}

/// Every date in `text`, in order of position, as ISO dates. Numeric dates are read day first
/// (`05/03/2024` is 5 March) unless `month_first`, or unless only the other order is valid.
pub fn find_dates(text: &str, month_first: bool) -> Vec<FoundDate> {
    let [ymd, dmy, d_mon_y, mon_d_y] = date_regexes();
    let mut found: Vec<FoundDate> = Vec::new();
    let mut taken: Vec<(usize, usize)> = Vec::new();
    let mut push = |start: usize, end: usize, iso: Option<String>, found: &mut Vec<FoundDate>| {
        if let Some(iso) = iso {
            if taken.iter().all(|(s, e)| end <= *s || start >= *e) {
                taken.push((start, end));
                found.push(FoundDate { start, iso });
            }
        }
    };
    let num = |s: &str| s.parse::<i64>().ok();
    for c in ymd.captures_iter(text) {
        let m = c.get(0).unwrap();
        let (y, mo, d) = (num(&c[1]), num(&c[2]), num(&c[3]));
        let iso = match (y, mo, d) {
            (Some(y), Some(mo), Some(d)) => iso_date(y as i32, mo as u32, d as u32),
            _ => None,
        };
        push(m.start(), m.end(), iso, &mut found);
    }
    for c in d_mon_y.captures_iter(text) {
        let m = c.get(0).unwrap();
        let iso = match (num(&c[1]), month_number(&c[2]), num(&c[3])) {
            (Some(d), Some(mo), Some(y)) => iso_date(y as i32, mo, d as u32),
            _ => None,
        };
        push(m.start(), m.end(), iso, &mut found);
    }
    for c in mon_d_y.captures_iter(text) {
        let m = c.get(0).unwrap();
        let iso = match (month_number(&c[1]), num(&c[2]), num(&c[3])) {
            (Some(mo), Some(d), Some(y)) => iso_date(y as i32, mo, d as u32),
            _ => None,
        };
        push(m.start(), m.end(), iso, &mut found);
    }
    for c in dmy.captures_iter(text) {
        let m = c.get(0).unwrap();
        let (Some(a), Some(b), Some(y)) = (num(&c[1]), num(&c[2]), num(&c[3])) else {
            continue;
        };
        // A two-digit year only with slashes, dots or dashes on both sides, never "12.50".
        let y = y as i32;
        let (first, second) = if month_first { (b, a) } else { (a, b) };
        let iso = iso_date(y, second as u32, first as u32)
            .or_else(|| iso_date(y, first as u32, second as u32));
        push(m.start(), m.end(), iso, &mut found);
    }
    found.sort_by_key(|d| d.start);
    found
}

/// The first date in `text`, ISO.
pub fn parse_date(text: &str) -> Option<String> {
    find_dates(text, false).into_iter().next().map(|d| d.iso)
}

/// An amount found in text, as a number, and where it ends.
#[derive(Debug, Clone, PartialEq)]
pub struct FoundAmount {
    pub start: usize,
    pub end: usize,
    pub value: f64,
    /// Whether it has two decimals (prices do, counts and years do not).
    pub decimals: bool,
}

/// Numbers with thousands separators and a decimal comma or point: `1,234.50`, `1.234,50`,
/// `1 234,50`, `-12.5`, `4.11`.
pub fn find_amounts(text: &str) -> Vec<FoundAmount> {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        Regex::new(r"-?\d{1,3}(?:[,.' ]\d{3})+(?:[.,]\d{1,2})?|-?\d+(?:[.,]\d{1,2})?").unwrap()
    });
    re.find_iter(text)
        .filter_map(|m| {
            let s = m.as_str();
            // Not part of a longer token such as an id, a date or a code.
            let before = text[..m.start()].chars().next_back();
            let after = text[m.end()..].chars().next();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '/' || c == '.' || c == '-')
                || after.is_some_and(|c| c.is_alphanumeric() || c == '/' || c == '%')
            {
                return None;
            }
            let value = parse_number(s)?;
            let decimals = s.len() >= 3 && {
                let b = s.as_bytes();
                b[b.len() - 3] == b'.' || b[b.len() - 3] == b','
            };
            Some(FoundAmount {
                start: m.start(),
                end: m.end(),
                value,
                decimals,
            })
        })
        .collect()
}

/// A number written with either decimal separator.
pub fn parse_number(s: &str) -> Option<f64> {
    let s = s.trim().replace([' ', '\''], "");
    let last_sep = s.rfind([',', '.']);
    let normal = match last_sep {
        Some(i) if s.len() - i - 1 <= 2 => {
            // The last separator with one or two digits after it is the decimal separator.
            let (int, frac) = s.split_at(i);
            format!("{}.{}", int.replace([',', '.'], ""), &frac[1..])
        }
        _ => s.replace([',', '.'], ""),
    };
    normal.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Rounds to two decimals (money in major units, as the packs' forms carry it).
pub fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// Jaro-Winkler similarity in [0, 1].
pub fn jaro_winkler(a: &str, b: &str) -> f64 {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let window = (a.len().max(b.len()) / 2).saturating_sub(1);
    let mut a_match = vec![false; a.len()];
    let mut b_match = vec![false; b.len()];
    let mut matches = 0usize;
    for i in 0..a.len() {
        let lo = i.saturating_sub(window);
        let hi = (i + window + 1).min(b.len());
        for j in lo..hi {
            if !b_match[j] && a[i] == b[j] {
                a_match[i] = true;
                b_match[j] = true;
                matches += 1;
                break;
            }
        }
    }
    if matches == 0 {
        return 0.0;
    }
    let mut transpositions = 0usize;
    let mut k = 0usize;
    for i in 0..a.len() {
        if a_match[i] {
            while !b_match[k] {
                k += 1;
            }
            if a[i] != b[k] {
                transpositions += 1;
            }
            k += 1;
        }
    }
    let m = matches as f64;
    let jaro =
        (m / a.len() as f64 + m / b.len() as f64 + (m - transpositions as f64 / 2.0) / m) / 3.0;
    let prefix = a.iter().zip(&b).take(4).take_while(|(x, y)| x == y).count();
    jaro + prefix as f64 * 0.1 * (1.0 - jaro)
}

/// Jaccard similarity of the character trigrams of two strings (padded with spaces).
pub fn trigram_similarity(a: &str, b: &str) -> f64 {
    fn grams(s: &str) -> HashSet<[char; 3]> {
        let chars: Vec<char> = format!("  {s} ").chars().collect();
        chars.windows(3).map(|w| [w[0], w[1], w[2]]).collect()
    }
    let (ga, gb) = (grams(a), grams(b));
    let inter = ga.intersection(&gb).count();
    let union = ga.union(&gb).count();
    if union == 0 {
        0.0
    } else {
        inter as f64 / union as f64
    }
}

/// Levenshtein distance over any comparable items (characters or words).
pub fn levenshtein<T: PartialEq>(a: &[T], b: &[T]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, x) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, y) in b.iter().enumerate() {
            let cost = usize::from(x != y);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_in_many_formats() {
        let cases = [
            ("Date: 25/12/2018 10:41", "2018-12-25"),
            ("DATE 02-01-18", "2018-01-02"),
            ("Invoice date 2014-08-03", "2014-08-03"),
            ("Data wystawienia: 2021.01.01", "2021-01-01"),
            ("August 3, 2014", "2014-08-03"),
            ("Aug 3 2014", "2014-08-03"),
            ("3rd Aug 2014", "2014-08-03"),
            ("19 avril 2014", "2014-04-19"),
            ("28 november 2022", "2022-11-28"),
            ("Rechnungsdatum: 7. Mai 2014", "2014-05-07"),
            ("31-DEC-17", "2017-12-31"),
            ("12/31/2017", "2017-12-31"),
            ("20 Oct, 2015", "2015-10-20"),
        ];
        for (text, iso) in cases {
            assert_eq!(parse_date(text).as_deref(), Some(iso), "{text}");
        }
    }

    #[test]
    fn impossible_dates_are_not_dates() {
        assert_eq!(parse_date("31/02/2020"), None);
        assert_eq!(parse_date("Total 12.50 RM"), None);
        assert_eq!(parse_date("Qty 3 Mark 2"), None);
        assert_eq!(parse_date("2020-13-01"), None);
    }

    #[test]
    fn month_first_when_asked() {
        let dates = find_dates("05/03/2024", true);
        assert_eq!(dates[0].iso, "2024-05-03");
        let dates = find_dates("05/03/2024", false);
        assert_eq!(dates[0].iso, "2024-03-05");
    }

    #[test]
    fn numbers_with_either_separator() {
        assert_eq!(parse_number("1,234.50"), Some(1234.5));
        assert_eq!(parse_number("1.234,50"), Some(1234.5));
        assert_eq!(parse_number("1 234,5"), Some(1234.5));
        assert_eq!(parse_number("316,83"), Some(316.83));
        assert_eq!(parse_number("1,842,517.35"), Some(1842517.35));
        assert_eq!(parse_number("4904"), Some(4904.0));
        assert_eq!(parse_number("12,345"), Some(12345.0));
    }

    #[test]
    fn amounts_are_not_parts_of_codes() {
        let found = find_amounts("INV-2023 total RM 9.00 paid 1,200.00 on 25/12/2018");
        let values: Vec<f64> = found.iter().map(|a| a.value).collect();
        assert_eq!(values, vec![9.0, 1200.0]);
        assert!(found.iter().all(|a| a.decimals));
    }

    #[test]
    fn stems_join_inflections() {
        assert_eq!(stem("cells"), stem("cell"));
        assert_eq!(stem("cooling"), stem("cooled"));
        assert_eq!(stem("batteries"), stem("battery"));
        assert_eq!(stem("washes"), "wash");
        assert_eq!(stem("glass"), "glass");
    }

    #[test]
    fn terms_drop_stopwords() {
        assert_eq!(
            terms("A battery module comprising the cells"),
            vec!["battery", "module", "cell"]
        );
    }

    #[test]
    fn normalise_text() {
        let raw = "  The  \u{201C}quick\u{201D}\tfox\r\njum-\nped over\u{00AD}  \n\n\n\nthe dog \u{2013} end  ";
        assert_eq!(
            normalise(raw),
            "The \"quick\" fox\njumped\nover\n\nthe dog - end"
        );
    }

    #[test]
    fn similarity_measures() {
        assert!((jaro_winkler("MARTHA", "MARHTA") - 0.9611).abs() < 1e-3);
        assert!((jaro_winkler("DIXON", "DICKSONX") - 0.8133).abs() < 1e-3);
        assert_eq!(jaro_winkler("", ""), 1.0);
        assert!(trigram_similarity("raumedic ag", "raumedic") > 0.5);
        assert!(trigram_similarity("raumedic", "freudenberg") < 0.1);
        assert_eq!(
            levenshtein(
                &['k', 'i', 't', 't', 'e', 'n'],
                &['s', 'i', 't', 't', 'i', 'n', 'g']
            ),
            3
        );
    }
}
