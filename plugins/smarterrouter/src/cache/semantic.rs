//! The semantic cache's pure parts: the index of stored last turns by embedding, and the guard.
//! No I/O (the embedding comes from `embedder`).
//!
//! An entry is found only among entries of the same *context*: the hash of the routed request
//! with the last user turn blanked (same endpoint, model, earlier turns, system prompt, tools,
//! parameters and identity), so a semantic hit can differ from the request in that one turn
//! only. Within a context the best cosine at or above the threshold wins, if the **guard**
//! passes: cosine similarity of sentence embeddings barely moves when a number, a negation or
//! a name changes ("enable 2FA" / "disable 2FA", "capital of France" / "of Spain", "17 × 23" /
//! "17 × 24"), and each of those changes the right answer. The guard compares, between the two
//! turns, the numbers and the polarity words (negations, either side of common opposites, units),
//! both in order ("miles to km" is not "km to miles"), and the names (capitalised words past the
//! start of a sentence, words with inner capitals or digits, and known names of languages,
//! countries and cities, in any case). Anything different: not a hit. It is deliberately strict: a rewording that changes
//! "turn on" into "enable" misses, which costs one upstream call, never a wrong answer.
//!
//! The index is bounded by the response cache's entry limit: it holds at most one vector per
//! stored answer, and an answer evicted, invalidated or found expired leaves the index with it.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

/// A stored last turn.
struct Indexed {
    hash: [u8; 16],
    /// Unit length.
    vector: Vec<f32>,
    signature: Signature,
}

/// The stored turns of one context. The scan reads 8-bit copies of the vectors laid end to end
/// (a quarter of the memory of the floats, no pointer to follow per entry); only entries whose
/// bound reaches the threshold get the exact product.
#[derive(Default)]
struct Bucket {
    dim: usize,
    /// `entries[i]`'s vector as `coarse[i*dim..(i+1)*dim] * scales[i]`.
    coarse: Vec<i8>,
    scales: Vec<f32>,
    /// L1 norms, for the rounding bound.
    l1s: Vec<f32>,
    entries: Vec<Indexed>,
}

/// A vector in 8 bits: values, scale and L1 norm.
fn coarse(vector: &[f32]) -> (Vec<i8>, f32, f32) {
    let max = vector.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
    let values = vector
        .iter()
        .map(|x| (x / scale).round().clamp(-127.0, 127.0) as i8)
        .collect();
    (values, scale, vector.iter().map(|x| x.abs()).sum())
}

/// An upper bound of the exact dot product of two vectors from their 8-bit forms: the 8-bit
/// product plus the most rounding can have taken away (each value is off by half a step at most).
fn dot_bound(a: (&[i8], f32, f32), b: (&[i8], f32, f32)) -> f32 {
    let raw: i32 =
        a.0.chunks_exact(16)
            .zip(b.0.chunks_exact(16))
            .map(|(x, y)| {
                x.iter()
                    .zip(y)
                    .map(|(p, q)| i32::from(*p) * i32::from(*q))
                    .sum::<i32>()
            })
            .sum::<i32>()
            + a.0[a.0.len() / 16 * 16..]
                .iter()
                .zip(&b.0[b.0.len() / 16 * 16..])
                .map(|(p, q)| i32::from(*p) * i32::from(*q))
                .sum::<i32>();
    let n = a.0.len() as f32;
    raw as f32 * a.1 * b.1 + (a.1 * b.2 + b.1 * a.2) / 2.0 + a.1 * b.1 * n / 4.0
}

impl Bucket {
    fn push(&mut self, entry: Indexed) {
        if self.entries.is_empty() {
            self.dim = entry.vector.len();
        }
        if entry.vector.len() != self.dim {
            return;
        }
        let (values, scale, l1) = coarse(&entry.vector);
        self.coarse.extend_from_slice(&values);
        self.scales.push(scale);
        self.l1s.push(l1);
        self.entries.push(entry);
    }

    fn remove(&mut self, hash: &[u8; 16]) -> bool {
        let Some(i) = self.entries.iter().position(|e| &e.hash == hash) else {
            return false;
        };
        let last = self.entries.len() - 1;
        if i != last {
            self.coarse
                .copy_within(last * self.dim..(last + 1) * self.dim, i * self.dim);
        }
        self.coarse.truncate(last * self.dim);
        self.scales.swap_remove(i);
        self.l1s.swap_remove(i);
        self.entries.swap_remove(i);
        true
    }
}

/// Embeddings of stored last turns, grouped by context.
pub struct SemanticIndex {
    inner: Mutex<Buckets>,
    max_entries: usize,
}

#[derive(Default)]
struct Buckets {
    by_context: HashMap<[u8; 16], Bucket>,
    context_of: HashMap<[u8; 16], [u8; 16]>,
}

/// A lookup's answer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Match {
    pub hash: [u8; 16],
    pub similarity: f32,
}

impl SemanticIndex {
    pub fn new(max_entries: usize) -> Self {
        SemanticIndex {
            inner: Mutex::new(Buckets::default()),
            max_entries,
        }
    }

    pub fn len(&self) -> usize {
        self.inner.lock().map(|b| b.context_of.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds the stored answer `hash` for `text` (embedded as `vector`) in `context`. A full index
    /// refuses (storage evicts first, so it is full only when storage is).
    pub fn insert(&self, context: [u8; 16], hash: [u8; 16], text: &str, vector: Vec<f32>) {
        let Some(vector) = normalised(vector) else {
            return;
        };
        let Ok(mut buckets) = self.inner.lock() else {
            return;
        };
        if buckets.context_of.contains_key(&hash) || buckets.context_of.len() >= self.max_entries {
            return;
        }
        let bucket = buckets.by_context.entry(context).or_default();
        let before = bucket.entries.len();
        bucket.push(Indexed {
            hash,
            vector,
            signature: Signature::of(text),
        });
        if bucket.entries.len() > before {
            buckets.context_of.insert(hash, context);
        }
    }

    /// Forgets the answer `hash` (evicted, expired or invalidated).
    pub fn remove(&self, hash: &[u8; 16]) {
        let Ok(mut buckets) = self.inner.lock() else {
            return;
        };
        let Some(context) = buckets.context_of.remove(hash) else {
            return;
        };
        if let Some(bucket) = buckets.by_context.get_mut(&context) {
            bucket.remove(hash);
            if bucket.entries.is_empty() {
                buckets.by_context.remove(&context);
            }
        }
    }

    /// The most similar stored turn in `context` at or above `threshold` whose guard passes
    /// (when `guard` is on).
    pub fn lookup(
        &self,
        context: &[u8; 16],
        text: &str,
        vector: &[f32],
        threshold: f32,
        guard: bool,
    ) -> Option<Match> {
        let query = normalised(vector.to_vec())?;
        let (values, scale, l1) = coarse(&query);
        let signature = guard.then(|| Signature::of(text));
        let buckets = self.inner.lock().ok()?;
        let bucket = buckets.by_context.get(context)?;
        if bucket.dim != query.len() {
            return None;
        }
        let mut best: Option<Match> = None;
        for (i, stored) in bucket.coarse.chunks_exact(bucket.dim.max(1)).enumerate() {
            // The bound never rules out a real match.
            let bound = dot_bound(
                (stored, bucket.scales[i], bucket.l1s[i]),
                (&values, scale, l1),
            );
            if bound < threshold.max(best.map_or(0.0, |b| b.similarity)) {
                continue;
            }
            let entry = &bucket.entries[i];
            let similarity = dot(&entry.vector, &query);
            let better = best.is_none_or(|b| similarity > b.similarity);
            if similarity >= threshold
                && better
                && signature
                    .as_ref()
                    .is_none_or(|s| s.compatible(&entry.signature))
            {
                best = Some(Match {
                    hash: entry.hash,
                    similarity,
                });
            }
        }
        best
    }
}

fn normalised(mut vector: Vec<f32>) -> Option<Vec<f32>> {
    let norm = dot(&vector, &vector).sqrt();
    if !norm.is_finite() || norm == 0.0 {
        return None;
    }
    vector.iter_mut().for_each(|x| *x /= norm);
    Some(vector)
}

/// A dot product the compiler vectorises (eight independent sums).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut sums = [0.0f32; 8];
    let chunks = a.len().min(b.len()) / 8;
    for i in 0..chunks {
        for (lane, sum) in sums.iter_mut().enumerate() {
            *sum += a[i * 8 + lane] * b[i * 8 + lane];
        }
    }
    let tail: f32 = a[chunks * 8..]
        .iter()
        .zip(&b[chunks * 8..])
        .map(|(x, y)| x * y)
        .sum();
    sums.iter().sum::<f32>() + tail
}

/// What the guard compares between two turns.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Signature {
    /// Numbers, number words, operator symbols and words, in order ("12 divided by 3" is not
    /// "3 divided by 12", "17 × 23" is not "17 + 23").
    numbers: Vec<String>,
    /// How many negations ("not", "isn't", "never", ...).
    negations: usize,
    /// Narrowing words ("without", "except"), in order.
    narrowing: Vec<String>,
    /// Units, in order ("miles to km" is not "km to miles").
    units: Vec<String>,
    /// Names (see the module doc), in order of first appearance.
    names: Vec<String>,
    /// Every word, lower case.
    words: BTreeSet<String>,
}

impl Signature {
    /// Whether the two turns differ in no number, negation, unit, opposite or name.
    pub fn compatible(&self, other: &Signature) -> bool {
        let has = |s: &Signature, w: &str| s.words.contains(w);
        // One side of a pair in one turn, the other side (and not the first) in the other.
        let opposed = OPPOSITES.iter().any(|(x, y)| {
            let (ax, ay, bx, by) = (has(self, x), has(self, y), has(other, x), has(other, y));
            (ax && !ay && by && !bx) || (ay && !ax && bx && !by)
        });
        self.numbers == other.numbers
            && self.negations == other.negations
            && self.narrowing == other.narrowing
            && self.units == other.units
            && !opposed
            && self.names.iter().all(|n| other.words.contains(n))
            && other.names.iter().all(|n| self.words.contains(n))
            && same_order(&self.names, &other.names)
    }
}

/// Whether the names both lists share come in the same order ("Python faster than Java" is
/// not "Java faster than Python").
fn same_order(a: &[String], b: &[String]) -> bool {
    let shared = |x: &[String], y: &[String]| -> Vec<String> {
        x.iter().filter(|n| y.contains(n)).cloned().collect()
    };
    shared(a, b) == shared(b, a)
}

/// Longest last turn matched by meaning: past it the embedding model only sees the start
/// (all-MiniLM-L6-v2 reads 256 tokens), so two turns differing later would look the same.
pub const MAX_TURN_CHARS: usize = 1000;

/// Whether a last turn may be matched by meaning: short enough to be embedded whole, and mostly
/// in a Latin script (the guard's words and names are English; a script without spaces would
/// give it nothing to compare).
pub fn matchable(text: &str) -> bool {
    let letters = text.chars().filter(|c| c.is_alphabetic()).count();
    let foreign = text
        .chars()
        .filter(|c| c.is_alphabetic() && !c.is_ascii())
        .count();
    text.chars().count() <= MAX_TURN_CHARS && letters > 0 && foreign * 10 <= letters
}

/// Whether `a` and `b` differ in no number, negation, opposite, unit or name.
pub fn guard_passes(a: &str, b: &str) -> bool {
    Signature::of(a).compatible(&Signature::of(b))
}

const NEGATIONS: &[&str] = &[
    "not", "no", "never", "none", "nothing", "nobody", "nowhere", "neither", "nor", "without",
    "cannot", "dont", "doesnt", "didnt", "isnt", "arent", "wasnt", "werent", "wont", "cant",
    "shouldnt", "wouldnt", "couldnt", "hasnt", "havent",
];

/// Words with a common opposite; either side of a pair counts as polarity.
const OPPOSITES: &[(&str, &str)] = &[
    ("enable", "disable"),
    ("enabled", "disabled"),
    ("enabling", "disabling"),
    ("allow", "deny"),
    ("allow", "block"),
    ("add", "remove"),
    ("increase", "decrease"),
    ("start", "stop"),
    ("on", "off"),
    ("open", "close"),
    ("encrypt", "decrypt"),
    ("encode", "decode"),
    ("install", "uninstall"),
    ("before", "after"),
    ("min", "max"),
    ("minimum", "maximum"),
    ("true", "false"),
    ("up", "down"),
    ("import", "export"),
    ("upload", "download"),
    ("ascending", "descending"),
    ("lock", "unlock"),
    ("show", "hide"),
    ("accept", "reject"),
    ("include", "exclude"),
    ("push", "pull"),
    ("read", "write"),
    ("buy", "sell"),
    ("win", "lose"),
    ("more", "less"),
    ("most", "least"),
    ("first", "last"),
    ("left", "right"),
    ("hot", "cold"),
    ("fast", "slow"),
    ("faster", "slower"),
    ("best", "worst"),
    ("better", "worse"),
    ("largest", "smallest"),
    ("biggest", "smallest"),
    ("highest", "lowest"),
    ("longest", "shortest"),
    ("oldest", "youngest"),
    ("advantages", "disadvantages"),
    ("pros", "cons"),
    ("safe", "unsafe"),
    ("legal", "illegal"),
    ("valid", "invalid"),
    ("connect", "disconnect"),
    ("subscribe", "unsubscribe"),
    ("follow", "unfollow"),
    ("mute", "unmute"),
    ("join", "leave"),
    ("north", "south"),
    ("east", "west"),
    ("above", "below"),
    ("inside", "outside"),
    ("positive", "negative"),
    ("success", "failure"),
    ("healthy", "unhealthy"),
    ("good", "bad"),
    ("love", "hate"),
    ("like", "dislike"),
    ("agree", "disagree"),
    ("compress", "decompress"),
    ("zip", "unzip"),
    ("sort", "shuffle"),
    ("upper", "lower"),
    ("uppercase", "lowercase"),
    ("fastest", "slowest"),
    ("cheapest", "expensive"),
    ("cheap", "expensive"),
    ("tallest", "shortest"),
    ("strongest", "weakest"),
    ("easiest", "hardest"),
    ("easy", "hard"),
    ("happy", "sad"),
    ("rich", "poor"),
    ("wet", "dry"),
    ("light", "heavy"),
    ("light", "dark"),
    ("early", "late"),
    ("always", "never"),
    ("input", "output"),
    ("client", "server"),
    ("sender", "receiver"),
    ("buyer", "seller"),
    ("parent", "child"),
    ("vertical", "horizontal"),
    ("horizontally", "vertically"),
    ("backward", "forward"),
    ("backwards", "forwards"),
    ("import", "export"),
];

/// Units: the same ones in the same order, or not a hit.
const UNITS: &[&str] = &[
    "celsius",
    "fahrenheit",
    "kelvin",
    "miles",
    "mile",
    "kilometers",
    "kilometer",
    "km",
    "meters",
    "meter",
    "metres",
    "metre",
    "m",
    "feet",
    "foot",
    "ft",
    "inches",
    "inch",
    "centimeters",
    "cm",
    "millimeters",
    "mm",
    "yards",
    "pounds",
    "lbs",
    "lb",
    "kilograms",
    "kilogram",
    "kg",
    "grams",
    "gram",
    "g",
    "ounces",
    "oz",
    "liters",
    "litres",
    "liter",
    "gallons",
    "gallon",
    "ml",
    "cups",
    "seconds",
    "minutes",
    "hours",
    "days",
    "weeks",
    "months",
    "years",
    "mph",
    "kph",
    "bytes",
    "kb",
    "mb",
    "gb",
    "tb",
    "usd",
    "eur",
    "gbp",
    "jpy",
];

/// Names written in lower case as often as not: programming languages and tools, countries,
/// large cities, currencies.
const NAMES: &[&str] = &[
    "python",
    "rust",
    "java",
    "javascript",
    "typescript",
    "go",
    "golang",
    "c",
    "c++",
    "c#",
    "cpp",
    "csharp",
    "ruby",
    "php",
    "perl",
    "swift",
    "kotlin",
    "scala",
    "haskell",
    "elixir",
    "erlang",
    "clojure",
    "lua",
    "r",
    "julia",
    "matlab",
    "fortran",
    "cobol",
    "bash",
    "shell",
    "powershell",
    "sql",
    "mysql",
    "postgres",
    "postgresql",
    "sqlite",
    "mongodb",
    "redis",
    "html",
    "css",
    "react",
    "vue",
    "angular",
    "svelte",
    "django",
    "flask",
    "rails",
    "spring",
    "node",
    "nodejs",
    "deno",
    "docker",
    "kubernetes",
    "linux",
    "windows",
    "macos",
    "ios",
    "android",
    "git",
    "dart",
    "zig",
    "nim",
    "ocaml",
    "fsharp",
    "groovy",
    "pascal",
    "assembly",
    "wasm",
    "france",
    "germany",
    "spain",
    "italy",
    "portugal",
    "japan",
    "china",
    "india",
    "brazil",
    "canada",
    "mexico",
    "australia",
    "russia",
    "egypt",
    "kenya",
    "nigeria",
    "argentina",
    "chile",
    "peru",
    "colombia",
    "sweden",
    "norway",
    "finland",
    "denmark",
    "poland",
    "greece",
    "turkey",
    "iran",
    "iraq",
    "israel",
    "korea",
    "vietnam",
    "thailand",
    "indonesia",
    "pakistan",
    "bangladesh",
    "ireland",
    "scotland",
    "england",
    "uk",
    "usa",
    "us",
    "america",
    "netherlands",
    "belgium",
    "switzerland",
    "austria",
    "hungary",
    "ukraine",
    "morocco",
    "ethiopia",
    "ghana",
    "paris",
    "london",
    "berlin",
    "madrid",
    "rome",
    "lisbon",
    "tokyo",
    "beijing",
    "delhi",
    "mumbai",
    "moscow",
    "cairo",
    "sydney",
    "toronto",
    "chicago",
    "boston",
    "seattle",
    "york",
    "angeles",
    "francisco",
    "dublin",
    "vienna",
    "prague",
    "warsaw",
    "athens",
    "istanbul",
    "seoul",
    "bangkok",
    "singapore",
    "dubai",
    "nairobi",
    "lagos",
    "lima",
    "bogota",
    "oslo",
    "stockholm",
    "helsinki",
    "copenhagen",
    "amsterdam",
    "brussels",
    "zurich",
    "geneva",
    "dollar",
    "dollars",
    "euro",
    "euros",
    "yen",
    "pound",
    "rupee",
    "rupees",
    "bitcoin",
];

const NUMBER_WORDS: &[&str] = &[
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
    "thirty",
    "forty",
    "fifty",
    "sixty",
    "seventy",
    "eighty",
    "ninety",
    "hundred",
    "thousand",
    "million",
    "billion",
    "half",
    "double",
    "twice",
    "triple",
    "second",
    "third",
    "fourth",
    "fifth",
    "dozen",
];

impl Signature {
    pub fn of(text: &str) -> Signature {
        let mut signature = Signature::default();
        let mut sentence_start = true;
        for raw in words(text) {
            let lower = raw.to_lowercase();
            let word = lower.trim_end_matches("'s").replace('\'', "");
            let at_start = sentence_start;
            sentence_start = raw.ends_with(['.', '?', '!', ':']);
            let word = word.trim_end_matches(['.', '?', '!', ':']).to_string();
            if word.is_empty() {
                continue;
            }
            if word.chars().any(|c| c.is_ascii_digit()) {
                signature.numbers.push(canonical_number(&word));
            } else if NUMBER_WORDS.contains(&word.as_str())
                || OPERATOR_WORDS.contains(&word.as_str())
                || word.chars().all(|c| OPERATORS.contains(&c))
            {
                signature.numbers.push(word.clone());
            }
            // "isn't", "is not" and "never" all negate; "without" and "except" narrow instead.
            if matches!(
                word.as_str(),
                "without" | "except" | "exclude" | "excluding"
            ) {
                signature.narrowing.push(word.clone());
            } else if lower.contains("n't") || NEGATIONS.contains(&word.as_str()) {
                signature.negations += 1;
            }
            if UNITS.contains(&word.as_str()) {
                signature.units.push(word.clone());
            }
            let capitalised = raw.chars().next().is_some_and(char::is_uppercase);
            let inner_caps = raw.chars().skip(1).any(char::is_uppercase);
            let named = NAMES.contains(&word.as_str())
                || (capitalised && !at_start && word.len() > 1 && !raw.starts_with("I'"))
                || inner_caps;
            if named && !signature.names.contains(&word) {
                signature.names.push(word.clone());
            }
            // "isn't" is also "is" (so "Why isn't" and "Why is ... not" share their words).
            if let Some(stem) = word.strip_suffix("nt").filter(|_| lower.contains("n't")) {
                signature.words.insert(stem.to_string());
            }
            signature.words.insert(word);
        }
        signature
    }
}

/// Operator symbols: each is a word of its own.
const OPERATORS: &[char] = &[
    '×', '*', '^', '<', '>', '=', '%', '$', '÷', '€', '£', '≤', '≥', '≠', '/', '+', '·',
];

/// Words that say which operation numbers go through (not "mean", "difference" or "product":
/// too often they mean something else).
const OPERATOR_WORDS: &[&str] = &[
    "plus",
    "minus",
    "times",
    "multiplied",
    "multiply",
    "divided",
    "divide",
    "squared",
    "cubed",
    "power",
    "root",
    "percent",
    "modulo",
    "mod",
    "equals",
    "sum",
    "quotient",
    "average",
    "median",
    "factorial",
    "logarithm",
    "derivative",
    "integral",
];

/// Words with their trailing sentence punctuation kept (to see where sentences start); operator
/// symbols split off as words of their own, and a minus sign before a digit kept.
fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    let mut spaced = String::with_capacity(text.len() + 16);
    let mut chars = text.chars().peekable();
    let mut previous = ' ';
    while let Some(c) = chars.next() {
        let next = chars.peek().copied().unwrap_or(' ');
        // "c++", "c#" and "a+b" inside a word stay as written; "+" between spaces or digits splits.
        let splits = OPERATORS.contains(&c)
            && !(c == '+' && previous.is_alphabetic())
            && !(c == '-' || c == '#');
        let minus = c == '-' && next.is_ascii_digit() && !previous.is_alphanumeric();
        if splits {
            spaced.push(' ');
            spaced.push(c);
            spaced.push(' ');
        } else if minus {
            spaced.push(' ');
            spaced.push('\u{2212}');
        } else {
            spaced.push(c);
        }
        previous = c;
    }
    spaced
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | '(' | ')' | '"'))
        .map(|w| {
            w.chars()
                .map(|c| match c {
                    '\u{2019}' => '\'',
                    '\u{2212}' => '-',
                    c => c,
                })
                .filter(|c| {
                    c.is_alphanumeric()
                        || OPERATORS.contains(c)
                        || matches!(c, '\'' | '#' | '.' | '?' | '!' | ':' | '-')
                })
                .collect::<String>()
                .trim_end_matches('-')
                .trim_matches('\'')
                .to_string()
        })
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .into_iter()
}

/// `3.0` and `3` are one number; `1,000` arrives as `1` and `000` (split on commas) either way.
fn canonical_number(word: &str) -> String {
    match word.parse::<f64>() {
        Ok(n) => format!("{n}"),
        Err(_) => word.to_string(),
    }
}

/// The measurement behind the README's threshold table (labelled pairs, real embeddings).
pub mod quality {
    use std::collections::BTreeMap;
    use std::path::Path;

    use serde_json::Value;

    /// The thresholds the table shows.
    pub const THRESHOLDS: [f32; 5] = [0.75, 0.80, 0.85, 0.90, 0.95];

    pub struct Pair {
        pub a: String,
        pub b: String,
        pub paraphrase: bool,
        pub kind: String,
        pub cosine: f32,
    }

    #[derive(Debug, Default)]
    pub struct Outcome {
        pub paraphrases: usize,
        pub paraphrase_hits: usize,
        pub near_misses: usize,
        pub false_hits: usize,
        pub false_by_kind: BTreeMap<String, usize>,
        /// The near-misses that hit, for reading.
        pub false_examples: Vec<(String, String, f32)>,
    }

    impl Outcome {
        pub fn hit_rate(&self) -> f64 {
            self.paraphrase_hits as f64 / self.paraphrases.max(1) as f64
        }

        pub fn false_hit_rate(&self) -> f64 {
            self.false_hits as f64 / self.near_misses.max(1) as f64
        }
    }

    /// `pairs.jsonl` with each pair's cosine from `embeddings.json`.
    pub fn load(dir: &Path) -> Result<Vec<Pair>, String> {
        let read = |name: &str| {
            std::fs::read_to_string(dir.join(name))
                .map_err(|e| format!("{}: {e}", dir.join(name).display()))
        };
        let vectors: BTreeMap<String, Vec<f32>> = serde_json::from_str(&read("embeddings.json")?)
            .map_err(|e| format!("embeddings.json: {e}"))?;
        let mut pairs = Vec::new();
        for line in read("pairs.jsonl")?
            .lines()
            .filter(|l| !l.trim().is_empty())
        {
            let row: Value = serde_json::from_str(line).map_err(|e| format!("pairs.jsonl: {e}"))?;
            let text = |k: &str| row[k].as_str().unwrap_or_default().to_string();
            let (a, b) = (text("a"), text("b"));
            let vector = |t: &str| {
                vectors
                    .get(t)
                    .and_then(|v| super::normalised(v.clone()))
                    .ok_or_else(|| {
                        format!(
                            "embeddings.json has no vector for {t:?}: run benches/semantic/run.sh"
                        )
                    })
            };
            let cosine = super::dot(&vector(&a)?, &vector(&b)?);
            pairs.push(Pair {
                paraphrase: row["label"] == "paraphrase",
                kind: text("kind"),
                a,
                b,
                cosine,
            });
        }
        Ok(pairs)
    }

    /// Which pairs hit at `threshold`, by cosine alone or with the guard.
    pub fn evaluate(pairs: &[Pair], threshold: f32, guard: bool) -> Outcome {
        let mut outcome = Outcome::default();
        for pair in pairs {
            let hit = pair.cosine >= threshold && (!guard || super::guard_passes(&pair.a, &pair.b));
            if pair.paraphrase {
                outcome.paraphrases += 1;
                outcome.paraphrase_hits += usize::from(hit);
            } else {
                outcome.near_misses += 1;
                if hit {
                    outcome.false_hits += 1;
                    *outcome.false_by_kind.entry(pair.kind.clone()).or_default() += 1;
                    outcome
                        .false_examples
                        .push((pair.a.clone(), pair.b.clone(), pair.cosine));
                }
            }
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guard_sees_numbers_negations_opposites_and_names() {
        let pass = [
            (
                "What is the capital of France?",
                "what's the capital of france",
            ),
            (
                "How do I reverse a list in Python?",
                "Reversing a Python list: how?",
            ),
            (
                "Explain quantum computing simply",
                "Can you explain quantum computing in simple terms?",
            ),
            ("What is 17 times 23?", "Compute 17 times 23."),
            (
                "Why isn't my code compiling?",
                "Why is my code not compiling?",
            ),
        ];
        for (a, b) in pass {
            assert!(
                guard_passes(a, b),
                "{a:?} / {b:?}: {:?} {:?}",
                Signature::of(a),
                Signature::of(b)
            );
        }
        let reject = [
            (
                "How do I enable two-factor authentication?",
                "How do I disable two-factor authentication?",
            ),
            (
                "What is the capital of France?",
                "What is the capital of Spain?",
            ),
            (
                "what is the capital of france",
                "what is the capital of spain",
            ),
            ("What is 17 times 23?", "What is 17 times 24?"),
            (
                "Give me three tips for sleep",
                "Give me five tips for sleep",
            ),
            (
                "How do I reverse a list in Python?",
                "How do I reverse a list in Rust?",
            ),
            ("Is coffee good for you?", "Is coffee not good for you?"),
            ("Tell me about Marie Curie", "Tell me about Pierre Curie"),
            ("Convert 5 miles to km", "Convert 5.5 miles to km"),
            ("What is 17 × 23?", "What is 17 + 23?"),
            ("What is 2^10?", "What is 2*10?"),
            ("Is 7 > 3?", "Is 7 < 3?"),
            ("What is 17 times 23?", "What is 17 plus 23?"),
            ("What is -5 squared?", "What is 5 squared?"),
            ("Is Python faster than Java?", "Is Java faster than Python?"),
            (
                "Translate this from English to French",
                "Translate this from French to English",
            ),
        ];
        for (a, b) in reject {
            assert!(!guard_passes(a, b), "{a:?} / {b:?}: {:?}", Signature::of(a));
        }
    }

    fn unit(v: &[f32]) -> Vec<f32> {
        normalised(v.to_vec()).unwrap()
    }

    #[test]
    fn lookup_stays_in_its_context_and_respects_threshold_and_guard() {
        let index = SemanticIndex::new(3);
        let (ctx, other_ctx) = ([1; 16], [2; 16]);
        index.insert(
            ctx,
            [10; 16],
            "What is the capital of France?",
            vec![1.0, 0.0, 0.0],
        );
        index.insert(ctx, [11; 16], "How do I enable 2FA?", vec![0.0, 1.0, 0.0]);
        assert_eq!(index.len(), 2);
        let near = unit(&[0.95, 0.05, 0.0]);
        let hit = index.lookup(&ctx, "what's the capital of france", &near, 0.9, true);
        assert_eq!(hit.map(|m| m.hash), Some([10; 16]));
        assert!(index
            .lookup(&other_ctx, "what's the capital of france", &near, 0.9, true)
            .is_none());
        assert!(index
            .lookup(&ctx, "what's the capital of france", &near, 0.999, true)
            .is_none());
        let disable = unit(&[0.0, 1.0, 0.01]);
        assert!(index
            .lookup(&ctx, "How do I disable 2FA?", &disable, 0.9, true)
            .is_none());
        assert!(index
            .lookup(&ctx, "How do I disable 2FA?", &disable, 0.9, false)
            .is_some());
        // Bounded, and entries leave with their answers.
        index.insert(ctx, [12; 16], "a", vec![0.0, 0.0, 1.0]);
        index.insert(ctx, [13; 16], "b", vec![0.0, 0.0, 1.0]);
        assert_eq!(index.len(), 3);
        index.remove(&[10; 16]);
        assert_eq!(index.len(), 2);
        assert!(index
            .lookup(&ctx, "what's the capital of france", &near, 0.9, true)
            .is_none());
        // A zero or mismatched vector is never a hit.
        assert!(index
            .lookup(&ctx, "a", &[0.0, 0.0, 0.0], 0.5, false)
            .is_none());
        assert!(index.lookup(&ctx, "a", &[1.0, 0.0], 0.5, false).is_none());
    }

    #[test]
    fn the_coarse_bound_is_never_below_the_exact_dot() {
        let vector = |seed: u32| {
            let raw: Vec<f32> = (0..384u32)
                .map(|i| {
                    ((i.wrapping_mul(2_654_435_761) ^ seed.wrapping_mul(40_503)) % 1000) as f32
                        / 500.0
                        - 1.0
                })
                .collect();
            normalised(raw).unwrap()
        };
        for seed in 0..50 {
            let (a, b) = (vector(seed), vector(seed + 1000));
            for (x, y) in [(&a, &b), (&a, &a)] {
                let (cx, cy) = (coarse(x), coarse(y));
                let bound = dot_bound((&cx.0, cx.1, cx.2), (&cy.0, cy.1, cy.2));
                let exact = dot(x, y);
                assert!(bound >= exact - 1e-5, "{bound} < {exact}");
                assert!(bound - exact < 0.05, "a useful bound: {bound} vs {exact}");
            }
        }
    }

    #[test]
    fn long_or_foreign_turns_are_never_matched_by_meaning() {
        assert!(matchable("What is the capital of France?"));
        assert!(matchable("Où est la gare ?"), "a few accents are fine");
        assert!(!matchable(&"word ".repeat(300)));
        assert!(!matchable("法国的首都是哪里？"));
        assert!(!matchable("12345"));
    }

    #[test]
    fn dot_matches_the_plain_sum() {
        let a: Vec<f32> = (0..19).map(|i| i as f32 * 0.5).collect();
        let b: Vec<f32> = (0..19).map(|i| 1.0 - i as f32 * 0.1).collect();
        let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - plain).abs() < 1e-3);
    }

    #[test]
    fn the_default_threshold_with_the_guard_makes_no_false_hit_on_the_labelled_pairs() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../benches/semantic");
        let pairs = quality::load(&dir).unwrap();
        assert!(pairs.len() >= 300, "{}", pairs.len());
        let threshold = crate::config::SemanticCacheConfig::default().similarity_threshold as f32;
        let guarded = quality::evaluate(&pairs, threshold, true);
        assert_eq!(guarded.false_hits, 0, "{:?}", guarded.false_examples);
        assert!(
            guarded.hit_rate() > 0.75,
            "paraphrases hit: {}",
            guarded.hit_rate()
        );
        // Cosine alone is not enough: the guard is what keeps near-misses out.
        let plain = quality::evaluate(&pairs, threshold, false);
        assert!(plain.false_hits > 20, "{}", plain.false_hits);
    }
}
