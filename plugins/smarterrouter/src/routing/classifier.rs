//! The learned prompt classifier: a multinomial logistic regression over hashed features of the
//! prompt (word unigrams and bigrams, word prefixes and suffixes, CJK characters and their
//! pairs, symbols; those of the first and last [`EDGE_BYTES`] and the two opening tokens once
//! more, marked, as a group normalised on its own) plus a few dense ones (the keyword analyser's
//! four scores, digit and operator density, code-like lines, question form, multiple-choice
//! options, length). Pure and deterministic; one pass over the text with no allocation beyond
//! the reused feature buffers.
//!
//! The weights are a versioned file ([`Weights::from_bytes`]): the one shipped in the binary
//! (`plugins/smarterrouter/data/classifier.bin`, written by `tools/train-classifier`) or another
//! given by `router.routing.classifier_weights`.

use std::sync::LazyLock;

use super::analysis::Category;

/// Hashed feature space: 2^17 buckets.
pub const FEATURE_BITS: u32 = 17;
pub const HASHED: usize = 1 << FEATURE_BITS;
/// Dense features, after the hashed ones (see [`dense`]).
pub const DENSE: usize = 12;
pub const CLASSES: usize = 4;

const MAGIC: &[u8; 8] = b"SRCLASS\0";
/// Bumped whenever the features or the file layout change: a file of another version would
/// classify garbage, so it is refused.
pub const FORMAT_VERSION: u32 = 2;

/// The features of one text: hashed bucket indices (repeats count) and the dense values.
#[derive(Debug, Clone, Default)]
pub struct Features {
    pub hashed: Vec<u32>,
    /// The copies of the features in the prompt's first and last [`EDGE_BYTES`] (where the
    /// instruction usually is) and of its opening tokens: normalised as a group of their own,
    /// so that a long passage in between does not drown them.
    pub edges: Vec<u32>,
    pub dense: [f32; DENSE],
    /// Scratch: the keyword ids found in the text (by the analyser's own scan).
    pub keywords: Vec<u32>,
    /// Set while reading the first or last [`EDGE_BYTES`] of a prompt: features there count
    /// twice, once marked with where they are.
    edge_tag: u64,
    /// How many of the prompt's opening tokens have been read (up to [`OPENING_TOKENS`]).
    opening: u8,
}

/// Adds feature `h`, and its copy marked with the edge it is in.
fn push(out: &mut Features, h: u64) {
    out.hashed.push(bucket(h));
    if out.edge_tag != 0 {
        out.edges.push(bucket(h ^ out.edge_tag));
    }
}

impl Features {
    pub fn clear(&mut self) {
        self.hashed.clear();
        self.edges.clear();
        self.dense = [0.0; DENSE];
        self.opening = 0;
    }
}

const SEED_UNIGRAM: u64 = 0x9e37_79b9_7f4a_7c15;
const SEED_BIGRAM: u64 = 0xc2b2_ae3d_27d4_eb4f;
const SEED_PREFIX: u64 = 0x1656_67b1_9e37_79f9;
const SEED_SUFFIX: u64 = 0x27d4_eb2f_1656_67c5;
const SEED_KEYWORD: u64 = 0x85eb_ca77_c2b2_ae63;
const SEED_OPENING: u64 = 0x3c6e_f372_fe94_f82b;
/// The first tokens of a prompt count once more, marked with their position.
const OPENING_TOKENS: u8 = 2;

fn mix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

fn bucket(h: u64) -> u32 {
    (mix(h) & (HASHED as u64 - 1)) as u32
}

/// FNV-1a step.
fn fnv(h: u64, byte: u8) -> u64 {
    (h ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
}

const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

fn unspaced(c: char) -> bool {
    matches!(c as u32, 0x3000..=0x9FFF | 0xAC00..=0xD7AF | 0xF900..=0xFAFF | 0xFF00..=0xFFEF)
}

/// A word being read: its hash, its first four chars' hash, its last three chars.
struct Word {
    hash: u64,
    prefix: u64,
    chars: usize,
    last: [char; 3],
    numeric: bool,
}

impl Word {
    fn new() -> Self {
        Word {
            hash: FNV_START,
            prefix: FNV_START,
            chars: 0,
            last: ['\0'; 3],
            numeric: true,
        }
    }

    fn push(&mut self, c: char) {
        let mut buf = [0u8; 4];
        for b in c.encode_utf8(&mut buf).bytes() {
            self.hash = fnv(self.hash, b);
            if self.chars < 4 {
                self.prefix = fnv(self.prefix, b);
            }
        }
        self.numeric &= c.is_ascii_digit();
        self.last = [self.last[1], self.last[2], c];
        self.chars += 1;
    }
}

fn emit(token: u64, out: &mut Features, prev: &mut u64) {
    push(out, token ^ SEED_UNIGRAM);
    let bigram = prev.rotate_left(17) ^ token ^ SEED_BIGRAM;
    push(out, bigram);
    if out.opening < OPENING_TOKENS {
        // How a prompt opens ("who sang", "write a", "solve for") says more about the task than
        // the same words later on.
        out.opening += 1;
        out.edges
            .push(bucket(token ^ SEED_OPENING ^ u64::from(out.opening)));
        if out.opening > 1 {
            out.edges.push(bucket(bigram ^ SEED_OPENING));
        }
    }
    *prev = token;
}

fn finish(w: Word, out: &mut Features, prev: &mut u64) {
    if w.numeric {
        // Every number is the same token: the digits say little, that there is one says much.
        emit(0x6e75_6d62_6572, out, prev);
        return;
    }
    emit(w.hash, out, prev);
    if w.chars >= 5 {
        push(out, w.prefix ^ SEED_PREFIX);
        let mut s = FNV_START;
        let mut buf = [0u8; 4];
        for c in w.last {
            for b in c.encode_utf8(&mut buf).bytes() {
                s = fnv(s, b);
            }
        }
        push(out, s ^ SEED_SUFFIX);
    }
}

/// A non-ASCII char: lower-cased, it continues the word, ends it, or (CJK, symbols) is a token
/// of its own.
fn read_non_ascii(raw: char, word: &mut Option<Word>, out: &mut Features, prev: &mut u64) {
    for c in raw.to_lowercase() {
        let in_word = (c.is_alphanumeric() || c == '_') && !unspaced(c);
        if in_word {
            word.get_or_insert_with(Word::new).push(c);
            continue;
        }
        if let Some(w) = word.take() {
            finish(w, out, prev);
        }
        if c.is_whitespace() {
            continue;
        }
        let mut h = FNV_START ^ 0x5359_4d42;
        let mut buf = [0u8; 4];
        for b in c.encode_utf8(&mut buf).bytes() {
            h = fnv(h, b);
        }
        emit(h, out, prev);
    }
}

/// The state of the line being read, for the structure features.
struct Lines {
    lines: u32,
    code_lines: u32,
    options: u32,
    start: bool,
    indent: u32,
    chars: u32,
    first: char,
    second: char,
    last_visible: char,
}

impl Lines {
    fn new() -> Self {
        Lines {
            lines: 0,
            code_lines: 0,
            options: 0,
            start: true,
            indent: 0,
            chars: 0,
            first: '\0',
            second: '\0',
            last_visible: '\0',
        }
    }

    /// One char that is not part of an ASCII word run.
    fn char(&mut self, raw: char) {
        if raw == '\n' {
            if self.chars > 0 {
                self.lines += 1;
                if matches!(self.last_visible, ';' | '{' | '}' | ':' | ')') || self.indent >= 4 {
                    self.code_lines += 1;
                }
                if matches!(self.first, 'A'..='E' | 'a'..='e')
                    && matches!(self.second, '.' | ')' | ':')
                {
                    self.options += 1;
                }
            }
            self.start = true;
            self.indent = 0;
            self.chars = 0;
            self.first = '\0';
            self.second = '\0';
        } else if self.start && (raw == ' ' || raw == '\t') {
            self.indent += if raw == '\t' { 4 } else { 1 };
        } else if !raw.is_whitespace() {
            self.visible(raw, raw, 1);
        }
    }

    /// `count` visible chars in a row, the first `first` and the last `last`; `second` is
    /// taken from the caller when the run is longer than one.
    fn visible(&mut self, first: char, last: char, count: u32) {
        if self.chars == 0 {
            self.first = first;
        } else if self.chars == 1 {
            self.second = first;
        }
        self.chars += count;
        self.start = false;
        self.last_visible = last;
    }
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Each ASCII word byte lower-cased, every other byte 0.
static WORD_LOWER: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 128 {
        let byte = b as u8;
        if byte.is_ascii_alphanumeric() || byte == b'_' {
            table[b] = byte.to_ascii_lowercase();
        }
        b += 1;
    }
    table
};

/// Adds the features of `text` (lower-cased as it is read) to `out`; tokens before byte
/// `first_until` and from byte `last_from` on also count as the prompt's first and last words.
/// Runs of ASCII word bytes, most of any prompt, take a tight loop of their own; everything
/// else goes char by char (a test holds it to the plain char-by-char reading).
pub fn extract(text: &str, out: &mut Features, first_until: usize, last_from: usize) {
    let tag_at = |at: usize| {
        if at < first_until {
            SEED_FIRST
        } else if at >= last_from {
            SEED_LAST
        } else {
            0
        }
    };
    let bytes = text.as_bytes();
    let mut prev: u64 = 0;
    let mut word: Option<Word> = None;
    let mut line = Lines::new();
    let (mut digits, mut operators, mut chars) = (0u32, 0u32, 0u32);
    let mut at = 0;
    while let Some(&b) = bytes.get(at) {
        if is_word_byte(b) {
            let w = word.get_or_insert_with(Word::new);
            let start = at;
            let mut run_digits = 0u32;
            let (mut hash, mut prefix, mut word_chars) = (w.hash, w.prefix, w.chars);
            while let Some(&c) = bytes.get(at).map(|&b| &WORD_LOWER[usize::from(b)]) {
                if c == 0 {
                    break;
                }
                hash = fnv(hash, c);
                if word_chars < 4 {
                    prefix = fnv(prefix, c);
                }
                word_chars += 1;
                run_digits += u32::from(c.wrapping_sub(b'0') < 10);
                at += 1;
            }
            let run = &bytes[start..at];
            (w.hash, w.prefix, w.chars) = (hash, prefix, word_chars);
            w.numeric &= run_digits as usize == run.len();
            for &b in &run[run.len().saturating_sub(3)..] {
                w.last = [w.last[1], w.last[2], b.to_ascii_lowercase() as char];
            }
            let count = run.len() as u32;
            if line.chars == 0 && count > 1 {
                line.second = run[1] as char;
            }
            line.visible(run[0] as char, run[run.len() - 1] as char, count);
            digits += run_digits;
            chars += count;
            continue;
        }
        let raw = if b < 0x80 {
            b as char
        } else {
            text[at..].chars().next().unwrap_or('\0')
        };
        let width = raw.len_utf8();
        chars += 1;
        line.char(raw);
        if matches!(
            raw,
            '=' | '+' | '*' | '/' | '^' | '<' | '>' | '%' | '$' | '\\' | '|' | '&'
        ) {
            operators += 1;
        }
        out.edge_tag = tag_at(at);
        if b < 0x80 {
            if let Some(w) = word.take() {
                finish(w, out, &mut prev);
            }
            if !b.is_ascii_whitespace() {
                emit(fnv(FNV_START ^ 0x5359_4d42, b), out, &mut prev);
            }
        } else {
            read_non_ascii(raw, &mut word, out, &mut prev);
        }
        at += width;
    }
    out.edge_tag = tag_at(text.len());
    if let Some(w) = word.take() {
        finish(w, out, &mut prev);
    }
    out.edge_tag = 0;
    let mut lines = line.lines;
    let mut code_lines = line.code_lines;
    if line.chars > 0 {
        lines += 1;
        if matches!(line.last_visible, ';' | '{' | '}') || line.indent >= 4 {
            code_lines += 1;
        }
    }
    let chars = chars.max(1) as f32;
    let d = &mut out.dense;
    d[4] += (digits as f32 / chars * 10.0).min(1.0);
    d[5] += (operators as f32 / chars * 20.0).min(1.0);
    d[6] += code_lines as f32 / lines.max(1) as f32;
    d[7] += f32::from(u8::from(
        line.last_visible == '?' || line.last_visible == '？',
    ));
    d[8] += (line.options as f32 / 4.0).min(1.0);
    d[9] += (chars.ln() / 10.0).min(1.0);
    d[10] += (lines as f32 / 20.0).min(1.0);
    d[11] += f32::from(u8::from(super::analysis::has_fence(text)));
}

/// What each feature of a group of `len` counts: a long text's many features together weigh
/// about what a short one's few do.
pub fn group_scale(len: usize) -> f32 {
    1.0 / (len.max(1) as f32).sqrt()
}

/// Sets the keyword analyser's four category scores as dense features 0..4.
pub fn set_keyword_scores(out: &mut Features, scores: [f32; 4]) {
    out.dense[..4].copy_from_slice(&scores.map(|s| s.clamp(0.0, 1.0)));
}

/// Trained weights: per hashed bucket and dense feature, one weight per class, and a bias.
/// Training works on `hashed`; a loaded file keeps only `quantised` (1 MiB, what inference reads).
#[derive(Debug, Clone, PartialEq)]
pub struct Weights {
    /// `HASHED * CLASSES`, bucket-major (training only; empty once loaded from a file).
    pub hashed: Vec<f32>,
    /// The same as i16, bucket-major, with one scale per class.
    pub quantised: Vec<i16>,
    pub scales: [f32; CLASSES],
    /// `DENSE * CLASSES`.
    pub dense: Vec<f32>,
    pub bias: [f32; CLASSES],
}

/// Why a weights file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WeightsError {
    #[error("not a SmarterRouter classifier weights file (wrong magic bytes)")]
    Magic,
    #[error("weights file format version {found}, this build reads version {FORMAT_VERSION}: retrain with tools/train-classifier or use the shipped file")]
    Version { found: u32 },
    #[error(
        "weights file is for {found} (feature bits, dense, classes), this build needs {expected}"
    )]
    Shape { found: String, expected: String },
    #[error("weights file is truncated or has trailing bytes ({0} bytes)")]
    Length(usize),
    #[error("weights file checksum does not match: the file is damaged")]
    Checksum,
    #[error("weights file holds a non-finite or zero scale, weight or bias (a diverged training run?): retrain")]
    NonFinite,
}

impl Weights {
    pub fn zeros() -> Self {
        Weights {
            hashed: vec![0.0; HASHED * CLASSES],
            quantised: Vec::new(),
            scales: [1.0; CLASSES],
            dense: vec![0.0; DENSE * CLASSES],
            bias: [0.0; CLASSES],
        }
    }

    /// Class logits of `features`.
    pub fn logits(&self, features: &Features) -> [f32; CLASSES] {
        let mut logits = self.bias;
        for group in [&features.hashed, &features.edges] {
            let sum = self.group_sum(group);
            let scale = group_scale(group.len());
            for k in 0..CLASSES {
                logits[k] += scale * sum[k];
            }
        }
        for (j, value) in features.dense.iter().enumerate() {
            if *value == 0.0 {
                continue;
            }
            if let Some(row) = self.dense.get(j * CLASSES..(j + 1) * CLASSES) {
                for k in 0..CLASSES {
                    logits[k] += value * row[k];
                }
            }
        }
        logits
    }

    /// The sum of the weights of a group of hashed features, per class.
    fn group_sum(&self, group: &[u32]) -> [f32; CLASSES] {
        let mut out = [0.0f32; CLASSES];
        if self.quantised.is_empty() {
            for &index in group {
                let at = index as usize * CLASSES;
                if let Some(row) = self.hashed.get(at..at + CLASSES) {
                    for k in 0..CLASSES {
                        out[k] += row[k];
                    }
                }
            }
        } else {
            // Integer sums, scaled once: every feature counts 1.
            let mut sum = [0i64; CLASSES];
            for &index in group {
                let at = index as usize * CLASSES;
                if let Some(row) = self.quantised.get(at..at + CLASSES) {
                    for k in 0..CLASSES {
                        sum[k] += i64::from(row[k]);
                    }
                }
            }
            for k in 0..CLASSES {
                out[k] = self.scales[k] * sum[k] as f32;
            }
        }
        out
    }

    /// Probabilities per category, in [`Category::ALL`] order; they sum to 1.
    pub fn probabilities(&self, features: &Features) -> [f32; CLASSES] {
        softmax(self.logits(features))
    }

    /// The file: magic, version, shape, the hashed weights quantised to i16 per class scale, the
    /// dense weights and bias as f32, then a Blake2s-256 checksum of all of it.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HASHED * CLASSES * 2 + 256);
        out.extend_from_slice(MAGIC);
        for v in [FORMAT_VERSION, FEATURE_BITS, DENSE as u32, CLASSES as u32] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        let (quantised, scales) = if self.quantised.is_empty() {
            let scales = self.scales();
            let q: Vec<i16> = self
                .hashed
                .iter()
                .enumerate()
                .map(|(i, w)| (w / scales[i % CLASSES]).round().clamp(-32767.0, 32767.0) as i16)
                .collect();
            (q, scales)
        } else {
            (self.quantised.clone(), self.scales)
        };
        for s in scales {
            out.extend_from_slice(&s.to_le_bytes());
        }
        for q in &quantised {
            out.extend_from_slice(&q.to_le_bytes());
        }
        for w in self.dense.iter().chain(self.bias.iter()) {
            out.extend_from_slice(&w.to_le_bytes());
        }
        let sum = checksum(&out);
        out.extend_from_slice(&sum);
        out
    }

    fn scales(&self) -> [f32; CLASSES] {
        let mut max = [0.0f32; CLASSES];
        for (i, w) in self.hashed.iter().enumerate() {
            max[i % CLASSES] = max[i % CLASSES].max(w.abs());
        }
        max.map(|m| if m > 0.0 { m / 32767.0 } else { 1.0 })
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Weights, WeightsError> {
        let expected_len =
            8 + 16 + 4 * CLASSES + HASHED * CLASSES * 2 + (DENSE + 1) * CLASSES * 4 + 32;
        if bytes.get(..8) != Some(MAGIC.as_slice()) {
            return Err(WeightsError::Magic);
        }
        let word = |at: usize| -> u32 {
            bytes
                .get(at..at + 4)
                .and_then(|b| b.try_into().ok())
                .map_or(0, u32::from_le_bytes)
        };
        let version = word(8);
        if version != FORMAT_VERSION {
            return Err(WeightsError::Version { found: version });
        }
        let shape = (word(12), word(16), word(20));
        if shape != (FEATURE_BITS, DENSE as u32, CLASSES as u32) {
            return Err(WeightsError::Shape {
                found: format!("{shape:?}"),
                expected: format!("{:?}", (FEATURE_BITS, DENSE, CLASSES)),
            });
        }
        if bytes.len() != expected_len {
            return Err(WeightsError::Length(bytes.len()));
        }
        let (body, sum) = bytes.split_at(bytes.len() - 32);
        if checksum(body) != sum {
            return Err(WeightsError::Checksum);
        }
        let float = |at: usize| -> f32 {
            body.get(at..at + 4)
                .and_then(|b| b.try_into().ok())
                .map_or(0.0, f32::from_le_bytes)
        };
        let mut at = 24;
        let scales: [f32; CLASSES] = std::array::from_fn(|k| float(at + 4 * k));
        at += 4 * CLASSES;
        let quantised: Vec<i16> = body[at..at + HASHED * CLASSES * 2]
            .chunks_exact(2)
            .map(|pair| i16::from_le_bytes([pair[0], pair[1]]))
            .collect();
        at += HASHED * CLASSES * 2;
        let dense: Vec<f32> = (0..DENSE * CLASSES).map(|i| float(at + 4 * i)).collect();
        at += DENSE * CLASSES * 4;
        let bias: [f32; CLASSES] = std::array::from_fn(|k| float(at + 4 * k));
        let finite = scales.iter().all(|s| s.is_finite() && *s > 0.0)
            && dense.iter().chain(bias.iter()).all(|v| v.is_finite());
        if !finite {
            return Err(WeightsError::NonFinite);
        }
        Ok(Weights {
            hashed: Vec::new(),
            quantised,
            scales,
            dense,
            bias,
        })
    }
}

fn checksum(bytes: &[u8]) -> [u8; 32] {
    use blake2::{Blake2s256, Digest};
    Blake2s256::digest(bytes).into()
}

pub fn softmax(logits: [f32; CLASSES]) -> [f32; CLASSES] {
    let max = logits.iter().copied().fold(f32::MIN, f32::max);
    let exp = logits.map(|l| (l - max).exp());
    let sum: f32 = exp.iter().sum();
    exp.map(|e| e / sum)
}

/// The weights shipped in the binary.
pub static SHIPPED_BYTES: &[u8] = include_bytes!("../../data/classifier.bin");

/// The shipped weights, parsed once; `Err` only if the build shipped a bad file (a test checks
/// it does not).
pub static SHIPPED: LazyLock<Result<Weights, WeightsError>> =
    LazyLock::new(|| Weights::from_bytes(SHIPPED_BYTES));

/// The category of the highest probability.
pub fn argmax(p: &[f32; CLASSES]) -> Category {
    let mut best = 0;
    for k in 1..CLASSES {
        if p[k] > p[best] {
            best = k;
        }
    }
    Category::ALL[best]
}

/// The features of one prompt text as training and routing both compute them (through
/// [`super::analysis::analyse_into`]): the text's head and tail (as the keyword analyser reads
/// it), each keyword the analyser found in it (in six languages) as a feature of its own, and
/// the analyser's scores.
pub fn text_features(text: &str, keyword_scores: [f32; 4], keywords: &[u32], out: &mut Features) {
    out.clear();
    let (head, tail) = super::analysis::bounded(text);
    if tail.is_empty() {
        let last_from = head.len().saturating_sub(EDGE_BYTES).max(EDGE_BYTES);
        extract(head, out, EDGE_BYTES, last_from);
    } else {
        extract(head, out, EDGE_BYTES, usize::MAX);
        extract(tail, out, 0, tail.len().saturating_sub(EDGE_BYTES));
    }
    for id in keywords {
        out.hashed.push(bucket(u64::from(*id) ^ SEED_KEYWORD));
    }
    set_keyword_scores(out, keyword_scores);
}

/// How much of each end of a prompt counts as its instruction: a passage in between says less
/// about the task than the request before or after it.
const EDGE_BYTES: usize = 500;
const SEED_FIRST: u64 = 0x0f1e_2d3c_4b5a_6978;
const SEED_LAST: u64 = 0x8796_a5b4_c3d2_e1f0;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::prompt::PromptView;
    use crate::routing::analysis::{analyse, analyse_with};

    fn classify(text: &str) -> Category {
        let weights = SHIPPED.as_ref().unwrap();
        analyse_with(&PromptView::from_prompt(text), Some(weights)).dominant()
    }

    /// The plain char-by-char reading that [`extract`] must match, feature for feature: the
    /// shipped weights were trained on it.
    fn extract_reference(text: &str, out: &mut Features, first_until: usize, last_from: usize) {
        let mut prev: u64 = 0;
        let mut word: Option<Word> = None;
        let mut lines = 0u32;
        let mut code_lines = 0u32;
        let mut line_start = true;
        let mut line_indent = 0u32;
        let mut last_visible = '\0';
        let (mut digits, mut operators, mut chars) = (0u32, 0u32, 0u32);
        let mut options = 0u32;
        let mut line_chars = 0u32;
        let mut first_on_line = '\0';
        let mut second_on_line = '\0';
        for (at, raw) in text.char_indices() {
            out.edge_tag = if at < first_until {
                SEED_FIRST
            } else if at >= last_from {
                SEED_LAST
            } else {
                0
            };
            chars += 1;
            if raw == '\n' {
                if line_chars > 0 {
                    lines += 1;
                    if matches!(last_visible, ';' | '{' | '}' | ':' | ')') || line_indent >= 4 {
                        code_lines += 1;
                    }
                    if matches!(first_on_line, 'A'..='E' | 'a'..='e')
                        && matches!(second_on_line, '.' | ')' | ':')
                    {
                        options += 1;
                    }
                }
                line_start = true;
                line_indent = 0;
                line_chars = 0;
                first_on_line = '\0';
                second_on_line = '\0';
            } else if line_start && (raw == ' ' || raw == '\t') {
                line_indent += if raw == '\t' { 4 } else { 1 };
            } else if !raw.is_whitespace() {
                if line_chars == 0 {
                    first_on_line = raw;
                } else if line_chars == 1 {
                    second_on_line = raw;
                }
                line_chars += 1;
                line_start = false;
                last_visible = raw;
            }
            if raw.is_ascii_digit() {
                digits += 1;
            }
            if matches!(
                raw,
                '=' | '+' | '*' | '/' | '^' | '<' | '>' | '%' | '$' | '\\' | '|' | '&'
            ) {
                operators += 1;
            }
            if raw.is_ascii() {
                let c = raw.to_ascii_lowercase();
                if c.is_ascii_alphanumeric() || c == '_' {
                    word.get_or_insert_with(Word::new).push(c);
                    continue;
                }
                if let Some(w) = word.take() {
                    finish(w, out, &mut prev);
                }
                if !c.is_ascii_whitespace() {
                    emit(fnv(FNV_START ^ 0x5359_4d42, c as u8), out, &mut prev);
                }
                continue;
            }
            read_non_ascii(raw, &mut word, out, &mut prev);
        }
        out.edge_tag = if text.len() < first_until {
            SEED_FIRST
        } else if text.len() >= last_from {
            SEED_LAST
        } else {
            0
        };
        if let Some(w) = word.take() {
            finish(w, out, &mut prev);
        }
        out.edge_tag = 0;
        if line_chars > 0 {
            lines += 1;
            if matches!(last_visible, ';' | '{' | '}') || line_indent >= 4 {
                code_lines += 1;
            }
        }
        let chars = chars.max(1) as f32;
        let d = &mut out.dense;
        d[4] += (digits as f32 / chars * 10.0).min(1.0);
        d[5] += (operators as f32 / chars * 20.0).min(1.0);
        d[6] += code_lines as f32 / lines.max(1) as f32;
        d[7] += f32::from(u8::from(last_visible == '?' || last_visible == '？'));
        d[8] += (options as f32 / 4.0).min(1.0);
        d[9] += (chars.ln() / 10.0).min(1.0);
        d[10] += (lines as f32 / 20.0).min(1.0);
        d[11] += f32::from(u8::from(text.contains("```")));
    }

    fn both_readings(text: &str, first_until: usize, last_from: usize) -> (Features, Features) {
        let (mut fast, mut plain) = (Features::default(), Features::default());
        extract(text, &mut fast, first_until, last_from);
        extract_reference(text, &mut plain, first_until, last_from);
        (fast, plain)
    }

    #[test]
    fn the_fast_reading_matches_the_plain_one() {
        for text in [
            "",
            "a",
            "Write a Python function that reverses a linked list.",
            "def f(x):\n    return x + 1;\n\tb = {}\nA) one\nb. two\n",
            "Résumé: l'été à Zürich, İstanbul ΣΊΣΥΦΟΣ 1234 x_y9 ＡＢＣ",
            "写一首关于大海的诗。日本語のテキストです、ありがとう",
            "  \r\n  leading and trailing  \n\n?",
            "3x + 5 = 20 -> x = 5 <= 10 & 7 | 8 % 2 $ \\ ^ /",
            "```rust\nfn main() {}\n```\nWhat does this do？",
        ] {
            for (first, last) in [(EDGE_BYTES, usize::MAX), (0, 0), (3, 10), (usize::MAX, 0)] {
                let (fast, plain) = both_readings(text, first, last);
                assert_eq!(fast.hashed, plain.hashed, "{text:?} {first} {last}");
                assert_eq!(fast.edges, plain.edges, "{text:?} {first} {last}");
                assert_eq!(fast.dense, plain.dense, "{text:?} {first} {last}");
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
        #[test]
        fn the_fast_reading_matches_the_plain_one_on_any_text(
            text in "(?s)[a-zA-Z0-9_ \\t\\n;:{}()?.=+*/A-E\u{e9}\u{130}\u{3a3}\u{4e00}-\u{4e10}\u{ff01}]{0,80}|\\PC{0,60}",
            first in 0usize..40,
            last in 0usize..90,
        ) {
            let (fast, plain) = both_readings(&text, first, last);
            proptest::prop_assert_eq!(fast.hashed, plain.hashed);
            proptest::prop_assert_eq!(fast.edges, plain.edges);
            proptest::prop_assert_eq!(fast.dense, plain.dense);
        }
    }

    #[test]
    fn the_shipped_weights_load_and_classify_plain_prompts() {
        assert!(SHIPPED.is_ok(), "{:?}", SHIPPED.as_ref().err());
        for (text, expected) in [
            (
                "Write a Python function that reverses a linked list.",
                Category::Coding,
            ),
            (
                "Fix this SQL: SELEC name FROM users WHERE id = 3",
                Category::Coding,
            ),
            ("Solve for x: 3x + 5 = 20", Category::Reasoning),
            (
                "A farmer has 17 sheep and all but 9 run away. How many are left?",
                Category::Reasoning,
            ),
            ("Write a poem about the sea at night.", Category::Creativity),
            (
                "Imagine you are a pirate captain. Greet your new crew.",
                Category::Creativity,
            ),
            ("What is the capital of Australia?", Category::Factual),
            ("Who wrote Pride and Prejudice?", Category::Factual),
        ] {
            assert_eq!(classify(text), expected, "{text}");
        }
    }

    #[test]
    fn probabilities_sum_to_one() {
        let weights = SHIPPED.as_ref().unwrap();
        let a = analyse_with(&PromptView::from_prompt("hello there"), Some(weights));
        assert!(
            (a.scores.iter().sum::<f32>() - 1.0).abs() < 1e-4,
            "{:?}",
            a.scores
        );
        let keywords = analyse(&PromptView::from_prompt("hello there"));
        assert_eq!(
            a.complexity, keywords.complexity,
            "complexity stays the analyser's"
        );
    }

    #[test]
    fn a_damaged_or_foreign_file_is_refused_with_its_reason() {
        let good = SHIPPED.as_ref().unwrap().to_bytes();
        assert_eq!(Weights::from_bytes(&good).as_ref(), SHIPPED.as_ref());
        let mut flipped = good.clone();
        flipped[1000] ^= 0x40;
        assert_eq!(Weights::from_bytes(&flipped), Err(WeightsError::Checksum));
        let mut version = good.clone();
        version[8] = 9;
        assert_eq!(
            Weights::from_bytes(&version),
            Err(WeightsError::Version { found: 9 })
        );
        assert_eq!(
            Weights::from_bytes(&good[..good.len() - 1]),
            Err(WeightsError::Length(good.len() - 1))
        );
        assert_eq!(
            Weights::from_bytes(b"{\"json\": 1}"),
            Err(WeightsError::Magic)
        );
        let mut diverged = SHIPPED.as_ref().unwrap().clone();
        diverged.bias[2] = f32::NAN;
        assert_eq!(
            Weights::from_bytes(&diverged.to_bytes()),
            Err(WeightsError::NonFinite)
        );
    }

    #[test]
    fn history_and_system_prompt_do_not_change_the_last_turns_features() {
        use crate::routing::analysis::analyse_into;
        let text = "What is the capital of Peru?";
        let mut alone = Features::default();
        analyse_into(&PromptView::from_prompt(text), &mut alone);
        let mut in_chat = Features::default();
        let view = PromptView {
            user_turns: vec!["write a python function with unit tests", text],
            system: vec!["You are a senior software engineer. Answer with code."],
            wants_json: true,
            ..PromptView::default()
        };
        analyse_into(&view, &mut in_chat);
        assert_eq!(
            alone.dense, in_chat.dense,
            "as trained: the last turn alone"
        );
        assert_eq!(alone.hashed, in_chat.hashed);
        assert_eq!(alone.edges, in_chat.edges);
    }
}
