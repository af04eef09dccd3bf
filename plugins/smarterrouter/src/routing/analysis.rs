//! Prompt analysis: category scores (coding, reasoning incl. math, creativity, factual),
//! complexity in 0..1, and the modality needs (vision, tools, JSON). Pure and bounded.
//!
//! Starts from the original SmarterRouter's keyword lists and increments, with its defects fixed:
//! keywords match whole words only ("api" no longer fires inside "capital"), every user turn and
//! the system prompt count (the last turn most), matching is one Aho-Corasick pass per text, and
//! a huge text is read only at its head and tail.

use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};

use super::keywords::{Kind, KEYWORDS};
use crate::api::prompt::PromptView;

/// Longest stretch of one text that is scanned; longer texts are read at head and tail.
pub const MAX_SCANNED_BYTES: usize = 16 * 1024;
/// User turns analysed, newest first.
const MAX_TURNS: usize = 8;
const SYSTEM_WEIGHT: f32 = 0.3;

pub use crate::model::Category;

/// The analysis of one request.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptAnalysis {
    /// Scores in 0..1, indexed by [`Category::index`].
    pub scores: [f32; 4],
    pub complexity: f32,
    pub vision: bool,
    pub tools: bool,
    pub json: bool,
    /// Bytes scanned (bounded) and bytes in the analysed texts.
    pub scanned_bytes: usize,
    pub total_bytes: usize,
}

impl PromptAnalysis {
    pub fn score(&self, category: Category) -> f32 {
        self.scores[category.index()]
    }

    /// The strongest category (ties go to the earlier one in [`Category::ALL`]).
    pub fn dominant(&self) -> Category {
        let mut best = Category::Factual;
        let mut best_score = f32::MIN;
        for c in Category::ALL {
            if self.score(c) > best_score {
                best = c;
                best_score = self.score(c);
            }
        }
        best
    }

    /// Category scores normalised to sum to 1.
    pub fn weights(&self) -> [f32; 4] {
        let sum: f32 = self.scores.iter().sum();
        if sum <= f32::EPSILON {
            return [0.0, 0.0, 0.0, 1.0];
        }
        self.scores.map(|s| s / sum)
    }

    /// `simple`, `medium` or `hard`.
    pub fn difficulty(&self) -> Difficulty {
        if self.complexity < 0.2 {
            Difficulty::Simple
        } else if self.complexity < 0.5 {
            Difficulty::Medium
        } else {
            Difficulty::Hard
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Difficulty {
    Simple,
    Medium,
    Hard,
}

impl Difficulty {
    pub fn as_str(self) -> &'static str {
        match self {
            Difficulty::Simple => "simple",
            Difficulty::Medium => "medium",
            Difficulty::Hard => "hard",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// The keyword automaton, built once. `None` only if the keyword table could not be compiled,
/// in which case analysis runs on structure alone rather than failing requests.
static MATCHER: LazyLock<Option<AhoCorasick>> = LazyLock::new(|| {
    AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::Standard)
        // A full DFA: a few hundred KiB built once, the fastest scan per byte.
        .kind(Some(AhoCorasickKind::DFA))
        .build(KEYWORDS.iter().map(|k| k.pattern))
        .ok()
});

/// What one text contributed.
#[derive(Debug, Default, Clone, Copy)]
struct TextScore {
    categories: [f32; 4],
    complexity: f32,
    indicators: u32,
}

pub fn analyse(view: &PromptView<'_>) -> PromptAnalysis {
    analyse_collecting(view, None).0
}

/// [`analyse`], also collecting the keywords found in the last user turn (for the classifier).
/// Also returns the last user turn's own category scores, as [`analyse`] gives them for that
/// turn alone (what the classifier was trained with, whatever the history or system prompt).
fn analyse_collecting(
    view: &PromptView<'_>,
    mut last_turn_keywords: Option<&mut Vec<u32>>,
) -> (PromptAnalysis, [f32; 4]) {
    let mut last_turn_scores = [0.0f32; 4];
    let mut seen = vec![false; KEYWORDS.len()];
    let mut scores = [0.0f32; 4];
    let mut complexity = 0.0f32;
    let mut scanned_bytes = 0;
    let mut total_bytes = 0;

    let turns: Vec<&str> = view
        .user_turns
        .iter()
        .rev()
        .take(MAX_TURNS)
        .copied()
        .collect();
    let mut weighted: Vec<(&str, f32)> = turns
        .iter()
        .enumerate()
        .map(|(age, text)| (*text, 0.5f32.powi(age as i32)))
        .collect();
    weighted.extend(view.system.iter().take(2).map(|s| (*s, SYSTEM_WEIGHT)));

    let mut indicators = 0;
    for (i, (text, weight)) in weighted.iter().enumerate() {
        let (head, tail) = bounded(text);
        scanned_bytes += head.len() + tail.len();
        total_bytes += text.len();
        seen.iter_mut().for_each(|s| *s = false);
        let mut ids = if i == 0 {
            last_turn_keywords.as_deref_mut()
        } else {
            None
        };
        let mut score = scan(head, &mut seen, ids.as_deref_mut());
        let tail_score = scan(tail, &mut seen, ids);
        for (total, tail) in score.categories.iter_mut().zip(tail_score.categories) {
            *total += tail;
        }
        score.complexity += tail_score.complexity;
        score.indicators += tail_score.indicators;
        for (total, text_score) in scores.iter_mut().zip(score.categories) {
            *total += weight * text_score.min(1.0);
        }
        complexity += weight * score.complexity;
        if i == 0 {
            indicators = score.indicators;
            complexity += structure_complexity(text, head, tail);
            last_turn_scores = score.categories.map(|s| s.clamp(0.0, 1.0));
            if has_code(head) || has_code(tail) {
                scores[Category::Coding.index()] = 1.0;
                last_turn_scores[Category::Coding.index()] = 1.0;
            }
        }
    }

    if view.has_tools {
        // Tool calls need a model that follows schemas; the original also counted them as
        // coding, which sent every tool request to code models.
        complexity += 0.2;
    }
    if view.wants_json {
        complexity += 0.1;
        scores[Category::Coding.index()] += 0.3;
    }
    if view.user_turns.len() > 4 {
        complexity += 0.1;
    }
    let coding = scores[Category::Coding.index()];
    if coding > 0.5 {
        complexity += match indicators {
            n if n >= 3 => 0.3,
            2 => 0.15,
            _ => 0.0,
        };
    }
    let mut scores = scores.map(|s| s.clamp(0.0, 1.0));
    for s in [&mut scores, &mut last_turn_scores] {
        if s.iter().all(|v| *v == 0.0) {
            s[Category::Factual.index()] = 0.5;
        }
    }
    let analysis = PromptAnalysis {
        scores,
        complexity: complexity.clamp(0.0, 1.0),
        vision: view.has_images,
        tools: view.has_tools,
        json: view.wants_json,
        scanned_bytes,
        total_bytes,
    };
    (analysis, last_turn_scores)
}

thread_local! {
    /// The feature buffer of the learned classifier, reused by each request on this thread.
    static FEATURES: std::cell::RefCell<super::classifier::Features> = Default::default();
}

/// [`analyse`], with the learned classifier's probabilities (of the last user turn, with the
/// keyword scores as features) as the category scores when `classifier` is given; complexity
/// and the modality needs stay the keyword analyser's.
pub fn analyse_with(
    view: &PromptView<'_>,
    classifier: Option<&super::classifier::Weights>,
) -> PromptAnalysis {
    let Some(weights) = classifier else {
        return analyse(view);
    };
    FEATURES.with(|cell| match cell.try_borrow_mut() {
        Ok(mut features) => {
            let mut analysis = analyse_into(view, &mut features);
            if view.user_turns.last().is_some() {
                analysis.scores = weights.probabilities(&features);
            }
            analysis
        }
        Err(_) => analyse(view),
    })
}

/// The keyword analysis, and in `features` the classifier's features of the last user turn
/// (what training and routing both use).
pub fn analyse_into(
    view: &PromptView<'_>,
    features: &mut super::classifier::Features,
) -> PromptAnalysis {
    let mut ids = std::mem::take(&mut features.keywords);
    ids.clear();
    let (analysis, last_turn_scores) = analyse_collecting(view, Some(&mut ids));
    let text = view.user_turns.last().copied().unwrap_or("");
    super::classifier::text_features(text, last_turn_scores, &ids, features);
    features.keywords = ids;
    analysis
}

/// Head and tail of a text, each at most half of [`MAX_SCANNED_BYTES`], cut on char boundaries.
pub fn bounded(text: &str) -> (&str, &str) {
    if text.len() <= MAX_SCANNED_BYTES {
        return (text, "");
    }
    let half = MAX_SCANNED_BYTES / 2;
    let mut head_end = half;
    while !text.is_char_boundary(head_end) {
        head_end -= 1;
    }
    let mut tail_start = text.len() - half;
    while !text.is_char_boundary(tail_start) {
        tail_start += 1;
    }
    (&text[..head_end], &text[tail_start..])
}

/// A character that continues a word: letters and digits, except scripts written without
/// spaces (CJK, kana, hangul), where a keyword may sit right next to other text.
fn is_word_char(c: char) -> bool {
    let unspaced =
        matches!(c as u32, 0x3000..=0x9FFF | 0xAC00..=0xD7AF | 0xF900..=0xFAFF | 0xFF00..=0xFFEF);
    c == '_' || (c.is_alphanumeric() && !unspaced)
}

/// One pass of the automaton; each keyword counts once per text (`seen`, checked before the
/// word-boundary test), and is added to `ids`.
fn scan(text: &str, seen: &mut [bool], mut ids: Option<&mut Vec<u32>>) -> TextScore {
    let mut score = TextScore::default();
    let Some(matcher) = MATCHER.as_ref() else {
        return score;
    };
    for m in matcher.find_overlapping_iter(text) {
        let id = m.pattern().as_usize();
        let (Some(keyword), Some(already)) = (KEYWORDS.get(id), seen.get(id).copied()) else {
            continue;
        };
        if already {
            continue;
        }
        let pattern = keyword.pattern.as_bytes();
        let starts_word = pattern.first().is_some_and(u8::is_ascii_alphanumeric);
        let ends_word = pattern.last().is_some_and(u8::is_ascii_alphanumeric);
        let before_ok = !starts_word
            || !text[..m.start()]
                .chars()
                .next_back()
                .is_some_and(is_word_char);
        let after_ok = !ends_word || !text[m.end()..].chars().next().is_some_and(is_word_char);
        if !(before_ok && after_ok) {
            continue;
        }
        seen[id] = true;
        if let Some(ids) = ids.as_deref_mut() {
            ids.push(id as u32);
        }
        match keyword.kind {
            Kind::Category(c) => score.categories[c.index()] += keyword.weight,
            Kind::Complexity => score.complexity += keyword.weight,
            Kind::CodingIndicator => score.indicators += 1,
        }
    }
    score
}

/// Length and shape of the last user turn.
fn structure_complexity(full: &str, head: &str, tail: &str) -> f32 {
    let mut c = 0.0;
    if full.len() > 500 {
        c += 0.2;
    }
    if full.len() > 1500 {
        c += 0.3;
    }
    let questions = head.matches('?').count() + tail.matches('?').count();
    if questions > 2 {
        c += 0.1;
    }
    let lines = memchr::memchr_iter(b'\n', head.as_bytes()).count()
        + memchr::memchr_iter(b'\n', tail.as_bytes()).count();
    if lines > 5 {
        c += 0.1;
    }
    c
}

/// A Markdown code fence (three backticks) anywhere in the text.
pub fn has_fence(text: &str) -> bool {
    memchr::memmem::find(text.as_bytes(), b"```").is_some()
}

/// Code in the text: a fence, or lines that start like code, or several lines ending like code.
/// (The original's bare substring "let " made "let me know" a coding prompt.)
fn has_code(text: &str) -> bool {
    if has_fence(text) {
        return true;
    }
    const STARTS: &[&str] = &[
        "def ",
        "class ",
        "function ",
        "const ",
        "let ",
        "var ",
        "import ",
        "#include",
        "fn ",
        "pub fn ",
        "public ",
        "SELECT ",
        "package ",
        "func ",
        "async def ",
    ];
    let mut code_like_endings = 0;
    for line in text.lines() {
        let trimmed = line.trim_start();
        let starts_like_code = STARTS.iter().any(|s| trimmed.starts_with(s))
            && (trimmed.contains('(')
                || trimmed.contains('=')
                || trimmed.contains('{')
                || trimmed.ends_with(':'));
        if starts_like_code {
            return true;
        }
        let end = line.trim_end();
        if end.ends_with(';') || end.ends_with('{') || end.ends_with("});") {
            code_like_endings += 1;
        }
    }
    code_like_endings >= 2
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(prompt: &str) -> PromptAnalysis {
        analyse(&PromptView::from_prompt(prompt))
    }

    #[test]
    fn capital_of_france_is_not_coding() {
        let a = of("What is the capital of France?");
        assert_eq!(a.score(Category::Coding), 0.0);
        assert_eq!(a.dominant(), Category::Factual);
    }

    #[test]
    fn categories_from_keywords() {
        assert_eq!(
            of("Write a python function that parses JSON").dominant(),
            Category::Coding
        );
        assert_eq!(
            of("Write a poem about the sea").dominant(),
            Category::Creativity
        );
        assert_eq!(
            of("Solve the equation and prove the result").dominant(),
            Category::Reasoning
        );
        assert_eq!(of("hi").dominant(), Category::Factual, "fallback");
    }

    #[test]
    fn let_me_know_is_not_code_but_a_fence_is() {
        assert!(!has_code("let me know what you think"));
        assert!(has_code("fix this:\n```\nx = 1\n```"));
        assert!(has_code("def add(a, b):\n    return a + b"));
        assert!(has_code("int x = 1;\nint y = 2;\n"));
    }

    #[test]
    fn last_turn_weighs_most_and_system_counts() {
        let view = PromptView {
            user_turns: vec![
                "Write a poem about autumn",
                "Now write a python function to sort a list",
            ],
            ..PromptView::default()
        };
        assert_eq!(analyse(&view).dominant(), Category::Coding);
        let view = PromptView {
            system: vec!["You are a senior software engineer who writes code."],
            user_turns: vec!["hello"],
            ..PromptView::default()
        };
        assert!(analyse(&view).score(Category::Coding) > 0.0);
    }

    #[test]
    fn huge_prompts_are_bounded_and_unicode_safe() {
        let big = "é".repeat(600_000) + " write a poem";
        let a = of(&big);
        assert!(a.scanned_bytes <= MAX_SCANNED_BYTES);
        assert_eq!(a.total_bytes, big.len());
        assert_eq!(a.dominant(), Category::Creativity, "the tail is read");
        assert!(a.complexity >= 0.5, "length still counts");
    }

    #[test]
    fn keywords_next_to_punctuation_and_cjk_match() {
        assert_eq!(
            of("Write a \u{201c}poem\u{201d} please").dominant(),
            Category::Creativity
        );
        assert_eq!(of("写一个python函数").dominant(), Category::Coding);
        assert_eq!(of("a\u{a0}poem").dominant(), Category::Creativity);
        assert_eq!(
            of("poemé").dominant(),
            Category::Factual,
            "a longer word is not the keyword"
        );
    }

    #[test]
    fn case_insensitive_and_non_english() {
        assert_eq!(of("WRITE A PYTHON FUNCTION").dominant(), Category::Coding);
        assert_eq!(
            of("Escribe un poema sobre el mar").dominant(),
            Category::Creativity
        );
        assert_eq!(of("写一个排序函数的代码").dominant(), Category::Coding);
    }

    #[test]
    fn complexity_rises_with_hard_words() {
        let easy = of("hi there");
        let hard = of("Design a scalable distributed architecture with a detailed, step-by-step analysis of the tradeoffs");
        assert!(easy.complexity < 0.2);
        assert!(hard.complexity >= 0.5, "{}", hard.complexity);
    }
}
