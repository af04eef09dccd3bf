//! Trains the router's prompt classifier from the labelled corpus and measures it.
//!
//! `train-classifier [--corpus PATH] [--out PATH] [--eval] [--epochs N] [--seed N]`
//!
//! - Without `--eval`: trains on the whole corpus (with format augmentation) and writes the
//!   weights file the router ships (`plugins/smarterrouter/data/classifier.bin`).
//! - With `--eval`: leave-one-source-out (each source of at least 300 prompts, grouped by the
//!   repository part of `source`, held out in turn: train on the others, test on it), for the
//!   learned classifier and the keyword analyser side by side, with a confusion matrix and each
//!   category's recall averaged over the sources that have it; then the multilingual table (`plugins/smarterrouter/data/multilingual-eval.jsonl`). With
//!   `TRAIN_SWEEP_FACTUAL=0,0.5,1` it also scores each fold with that much added to the factual
//!   logit, and with `TRAIN_SWEEP_FALLBACK=0.5,0.7` with the keyword analyser's label wherever the
//!   learned top probability is below that (mean and per-category recall for each).
//!   `TRAIN_DUMP=SOURCE` prints that source's held-out mistakes. The other `TRAIN_*` variables
//!   (see [`env_f32`]'s callers) change the training for experiments; what ships uses the defaults.
//!
//! Deterministic: the same corpus, seed and epochs give the same file.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Per-class arithmetic over parallel arrays reads best with one index.
#![allow(clippy::needless_range_loop)]

use std::collections::BTreeMap;

mod templates;

use smarterrouter_plugin::api::prompt::PromptView;
use smarterrouter_plugin::routing::analysis::{analyse, analyse_into, Category};
use smarterrouter_plugin::routing::classifier::{
    argmax, group_scale, Features, Weights, CLASSES, DENSE,
};

struct Example {
    text: String,
    label: usize,
    source: String,
}

/// xorshift64*: a fixed-seed generator, so training is reproducible without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

fn label_of(name: &str) -> usize {
    Category::parse(name)
        .unwrap_or_else(|| panic!("unknown label {name}"))
        .index()
}

fn load(path: &str) -> Vec<Example> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let source = v["source"].as_str().unwrap_or("").to_string();
            Example {
                text: v["text"].as_str().unwrap().to_string(),
                label: label_of(v["label"].as_str().unwrap()),
                source: source.split(':').next().unwrap_or("").to_string(),
            }
        })
        .collect()
}

const PREFIXES: &[&str] = &[
    "",
    "",
    "Question: ",
    "Please help me with this.\n",
    "You are a helpful assistant.\n\n",
    "Can you answer this? ",
    "I need help: ",
    "Task: ",
];
const SUFFIXES: &[&str] = &[
    "",
    "",
    " Explain briefly.",
    "\nAnswer:",
    " Thanks!",
    " Be concise.",
];

fn is_option_line(line: &str) -> bool {
    let t = line.trim_start();
    let mut c = t.chars();
    let first = c.next();
    let second = c.next();
    let paren = t.starts_with('(') && t.get(2..3) == Some(")");
    (matches!(first, Some('A'..='E')) && matches!(second, Some('.' | ')' | ':'))) || paren
}

/// Layouts that a few sources use for one category each (LogicBench's "Context: ... Question:",
/// the exams' "Passage:"): every category is shown in them, its last sentence as the question.
const LAYOUTS: usize = 5;

fn layout(kind: usize, head: &str, tail: &str) -> String {
    match kind {
        0 => format!("Context: {head}\nQuestion: {tail}"),
        1 => format!("Question: {tail}\n\nContext: {head}"),
        2 => format!("Passage:\n{head}\n\n{tail}"),
        3 => format!("Read the text and answer.\n\n{head}\n\n{tail}"),
        _ => format!("{head}\n\nBased on the text above: {tail}"),
    }
}

/// What a layout asks when the prompt is one sentence.
const NEUTRAL_QUESTIONS: &[&str] = &[
    "What is the answer?",
    "Respond to the text above.",
    "What should the reply be?",
    "Answer accordingly.",
];

/// Sentence ends, in the scripts the corpus has.
fn ends_sentence(c: char) -> bool {
    matches!(c, '.' | '?' | '!' | '。' | '？' | '！')
}

/// The text before its last sentence, and that sentence.
fn split_last_sentence(text: &str) -> Option<(&str, &str)> {
    let trimmed = text.trim_end();
    let body = trimmed
        .strip_suffix(|c: char| ends_sentence(c) || c == ':')
        .unwrap_or(trimmed);
    let (cut, end) = body
        .char_indices()
        .rfind(|(_, c)| ends_sentence(*c) || *c == '\n')?;
    let cut = cut + end.len_utf8();
    let (head, tail) = (trimmed[..cut].trim(), trimmed[cut..].trim());
    (head.len() >= 20 && tail.len() >= 8).then_some((head, tail))
}

/// A variant of a prompt in another format, so that no format belongs to one category: options
/// removed or added, another layout, a wrapper before and after.
fn variant(text: &str, rng: &mut Rng) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let has_options = lines.iter().filter(|l| is_option_line(l)).count() >= 2;
    let mut body = if has_options {
        lines
            .iter()
            .filter(|l| !is_option_line(l))
            .copied()
            .collect::<Vec<_>>()
            .join("\n")
    } else {
        text.to_string()
    };
    let layout_share = env_f32("TRAIN_SCAFFOLD", 0.5) as f64;
    if rng.chance(layout_share) {
        let kind = rng.below(LAYOUTS);
        body = match split_last_sentence(&body) {
            Some((head, tail)) => layout(kind, head, tail),
            // One sentence: all of it is the text, and the question a neutral one.
            None => layout(
                kind,
                &body,
                NEUTRAL_QUESTIONS[rng.below(NEUTRAL_QUESTIONS.len())],
            ),
        };
    }
    if !has_options && rng.chance(0.5) {
        let words: Vec<&str> = text
            .split_whitespace()
            .filter(|w| w.chars().all(char::is_alphanumeric) && w.len() > 2)
            .collect();
        if words.len() >= 4 {
            for letter in ["A", "B", "C", "D"] {
                body.push_str(&format!("\n{letter}. {}", words[rng.below(words.len())]));
            }
        }
    }
    if rng.chance(0.2) {
        body = body.to_lowercase();
    }
    format!(
        "{}{}{}",
        PREFIXES[rng.below(PREFIXES.len())],
        body,
        SUFFIXES[rng.below(SUFFIXES.len())]
    )
}

/// Whether a prompt has Chinese or Japanese characters in it (at least four).
fn has_cjk_script(text: &str) -> bool {
    text.chars()
        .filter(|c| matches!(*c as u32, 0x3040..=0x30ff | 0x4e00..=0x9fff))
        .nth(3)
        .is_some()
}

fn features_of(text: &str, out: &mut Features) {
    analyse_into(&PromptView::from_prompt(text), out);
}

struct Trainer {
    epochs: usize,
    seed: u64,
}

/// One training prompt's features, label and weight.
struct Item {
    features: Features,
    label: usize,
    weight: f32,
    cjk: bool,
}

impl Item {
    fn new(text: &str, label: usize, weight: f32) -> Self {
        let mut features = Features::default();
        features_of(text, &mut features);
        Item {
            features,
            label,
            weight,
            cjk: has_cjk_script(text),
        }
    }
}

impl Trainer {
    fn train(&self, examples: &[&Example]) -> Weights {
        let mut rng = Rng(self.seed | 1);
        let mut items: Vec<Item> = Vec::with_capacity(examples.len() * 2);
        let per_template = env_f32("TRAIN_TEMPLATES", 60.0) as usize;
        let per_pattern = env_f32("TRAIN_PATTERNS", 200.0) as usize;
        let per_language = env_f32("TRAIN_LANGUAGES", 100.0) as usize;
        let mut written = templates::generate(&mut rng, per_template);
        written.extend(templates::generate_patterns(&mut rng, per_pattern));
        written.extend(templates::generate_languages(&mut rng, per_language));
        items.extend(
            written
                .iter()
                .map(|(text, label)| Item::new(text, *label, 1.0)),
        );
        // Large sources would teach their own style: each counts as the square root of its size.
        let mut source_size: BTreeMap<&str, usize> = BTreeMap::new();
        for e in examples {
            *source_size.entry(e.source.as_str()).or_default() += 1;
        }
        let power = env_f32("TRAIN_SOURCE_POWER", 0.5);
        let mean_size = examples.len() as f32 / source_size.len().max(1) as f32;
        // Every prompt once as it is and once in another format.
        for e in examples {
            let w = (mean_size / source_size[e.source.as_str()] as f32).powf(power);
            items.push(Item::new(&e.text, e.label, w));
            items.push(Item::new(&variant(&e.text, &mut rng), e.label, w));
        }
        // Each category weighs the same in total, however many prompts it has.
        let mut counts = [0usize; CLASSES];
        for item in &items {
            counts[item.label] += 1;
        }
        let class_weight: Vec<f32> = counts
            .iter()
            .map(|c| items.len() as f32 / (CLASSES as f32 * (*c).max(1) as f32))
            .collect();
        // Among the prompts in Chinese and Japanese script, too, each category weighs the same
        // (at most this many times its share): the corpus's few sources in that script are each
        // of one category (AGIEval's exams factual, WritingBench's and LongWriter's requests
        // creativity), and the script would otherwise become that category's sign.
        let cjk_cap = env_f32("TRAIN_SCRIPT_CAP", 5.0);
        let mut cjk_weight = [0.0f32; CLASSES];
        for item in items.iter().filter(|i| i.cjk) {
            cjk_weight[item.label] += item.weight;
        }
        let cjk_total: f32 = cjk_weight.iter().sum();
        let present = cjk_weight.iter().filter(|x| **x > 0.0).count() as f32;
        for item in items.iter_mut().filter(|i| i.cjk) {
            item.weight *= (cjk_total / (present * cjk_weight[item.label])).min(cjk_cap);
        }
        let mut w = Weights::zeros();
        let mut order: Vec<usize> = (0..items.len()).collect();
        let l2 = env_f32("TRAIN_L2", 1e-6);
        let lr0 = env_f32("TRAIN_LR", 0.5);
        let dense_lr = env_f32("TRAIN_DENSE_LR", 0.1);
        let mut step = 0usize;
        for _ in 0..self.epochs {
            for i in (1..order.len()).rev() {
                let j = rng.below(i + 1);
                order.swap(i, j);
            }
            for &i in &order {
                let Item {
                    features: f,
                    label,
                    weight,
                    ..
                } = &items[i];
                let lr = lr0 / (1.0 + step as f32 / 50_000.0);
                step += 1;
                let p = w.probabilities(f);
                let cw = class_weight[*label] * weight;
                let mut g = [0.0f32; CLASSES];
                for k in 0..CLASSES {
                    g[k] = cw * (p[k] - if k == *label { 1.0 } else { 0.0 });
                }
                for group in [&f.hashed, &f.edges] {
                    let scale = group_scale(group.len());
                    for &index in group {
                        let at = index as usize * CLASSES;
                        for k in 0..CLASSES {
                            let v = &mut w.hashed[at + k];
                            *v -= lr * (g[k] * scale + l2 * *v);
                        }
                    }
                }
                for j in 0..DENSE {
                    let x = f.dense[j];
                    if x != 0.0 {
                        for k in 0..CLASSES {
                            w.dense[j * CLASSES + k] -= lr * dense_lr * g[k] * x;
                        }
                    }
                }
                for k in 0..CLASSES {
                    w.bias[k] -= lr * 0.01 * g[k];
                }
            }
        }
        // What ships is what is measured: round-trip through the file format.
        Weights::from_bytes(&w.to_bytes()).unwrap()
    }
}

/// Tuning knobs for experiments (the shipped file uses the defaults).
fn env_f32(name: &str, default: f32) -> f32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn keyword_label(text: &str) -> usize {
    analyse(&PromptView::from_prompt(text)).dominant().index()
}

fn learned_probabilities(w: &Weights, text: &str) -> [f32; CLASSES] {
    let mut f = Features::default();
    features_of(text, &mut f);
    w.probabilities(&f)
}

fn learned_label(w: &Weights, text: &str) -> usize {
    argmax(&learned_probabilities(w, text)).index()
}

/// Another way to label held-out prompts from the learned probabilities and the keyword label,
/// scored on the same folds (an experiment; nothing ships from it).
struct Variant {
    name: String,
    decide: Box<dyn Fn([f32; CLASSES], usize) -> usize>,
    accuracy_sum: f64,
    confusion: [[usize; CLASSES]; CLASSES],
}

/// The variants the environment asks for: `TRAIN_SWEEP_FACTUAL="0,0.5,1"` adds that much to the
/// factual logit (what a prior toward factual buys and costs the others);
/// `TRAIN_SWEEP_FALLBACK="0.5,0.7"` takes the keyword label where the learned top probability
/// is below that.
fn sweep_variants() -> Vec<Variant> {
    let values = |name: &str| -> Vec<f32> {
        std::env::var(name)
            .map(|v| v.split(',').filter_map(|x| x.trim().parse().ok()).collect())
            .unwrap_or_default()
    };
    let variant = |name: String, decide: Box<dyn Fn([f32; CLASSES], usize) -> usize>| Variant {
        name,
        decide,
        accuracy_sum: 0.0,
        confusion: [[0; CLASSES]; CLASSES],
    };
    let mut variants = Vec::new();
    for b in values("TRAIN_SWEEP_FACTUAL") {
        // Adding b to a logit multiplies its unnormalised probability by e^b.
        let decide = move |mut p: [f32; CLASSES], _keyword: usize| {
            p[Category::Factual.index()] *= b.exp();
            argmax(&p).index()
        };
        variants.push(variant(format!("factual logit +{b}"), Box::new(decide)));
    }
    for t in values("TRAIN_SWEEP_FALLBACK") {
        let decide = move |p: [f32; CLASSES], keyword: usize| {
            let best = argmax(&p).index();
            if p[best] >= t {
                best
            } else {
                keyword
            }
        };
        variants.push(variant(format!("keywords below {t}"), Box::new(decide)));
    }
    variants
}

/// A held-out source counts towards a category's mean recall when it has this many of its prompts.
const MIN_CATEGORY_PROMPTS: usize = 30;

fn names() -> [&'static str; 4] {
    Category::ALL.map(|c| c.as_str())
}

fn evaluate(trainer: &Trainer, all: &[Example]) {
    let mut by_source: BTreeMap<&str, Vec<&Example>> = BTreeMap::new();
    for e in all {
        by_source.entry(e.source.as_str()).or_default().push(e);
    }
    let held: Vec<&str> = by_source
        .iter()
        .filter(|(_, v)| v.len() >= 300)
        .map(|(k, _)| *k)
        .collect();
    println!("| held-out source | prompts | labels | learned | keywords |");
    println!("|---|---|---|---|---|");
    let mut confusion = [[0usize; CLASSES]; CLASSES];
    let mut kw_confusion = [[0usize; CLASSES]; CLASSES];
    let (mut sum_learned, mut sum_kw) = (0.0, 0.0);
    let mut variants = sweep_variants();
    // Per category, the mean over the held-out sources that have it of its recall there.
    let mut category_recall = [[0.0f64; CLASSES]; 2];
    let mut category_sources = [0usize; CLASSES];
    for source in &held {
        let train: Vec<&Example> = all.iter().filter(|e| e.source != *source).collect();
        let w = trainer.train(&train);
        let test = &by_source[source];
        let (mut ok, mut kw_ok) = (0usize, 0usize);
        let mut labels = [0usize; CLASSES];
        let mut right = [[0usize; CLASSES]; 2];
        let mut variant_ok = vec![0usize; variants.len()];
        for e in test {
            let p = learned_probabilities(&w, &e.text);
            let l = argmax(&p).index();
            let k = keyword_label(&e.text);
            for (v, ok) in variants.iter_mut().zip(&mut variant_ok) {
                let label = (v.decide)(p, k);
                v.confusion[e.label][label] += 1;
                *ok += usize::from(label == e.label);
            }
            confusion[e.label][l] += 1;
            kw_confusion[e.label][k] += 1;
            ok += usize::from(l == e.label);
            kw_ok += usize::from(k == e.label);
            right[0][e.label] += usize::from(l == e.label);
            right[1][e.label] += usize::from(k == e.label);
            labels[e.label] += 1;
            if l != e.label && std::env::var("TRAIN_DUMP").is_ok_and(|d| source.contains(&d)) {
                let short: String = e.text.chars().take(160).collect();
                eprintln!(
                    "{source} [{} as {}] {}",
                    names()[e.label],
                    names()[l],
                    short.replace('\n', " / ")
                );
            }
        }
        for (v, ok) in variants.iter_mut().zip(&variant_ok) {
            v.accuracy_sum += *ok as f64 / test.len() as f64;
        }
        let acc = ok as f64 / test.len() as f64;
        let kw_acc = kw_ok as f64 / test.len() as f64;
        sum_learned += acc;
        sum_kw += kw_acc;
        for k in 0..CLASSES {
            if labels[k] >= MIN_CATEGORY_PROMPTS {
                for m in 0..2 {
                    category_recall[m][k] += right[m][k] as f64 / labels[k] as f64;
                }
                category_sources[k] += 1;
            }
        }
        let label_text: Vec<String> = (0..CLASSES)
            .filter(|k| labels[*k] > 0)
            .map(|k| format!("{} {}", names()[k], labels[k]))
            .collect();
        println!(
            "| {source} | {} | {} | {acc:.3} | {kw_acc:.3} |",
            test.len(),
            label_text.join(", ")
        );
    }
    println!(
        "| **mean of {} sources** | | | **{:.3}** | {:.3} |",
        held.len(),
        sum_learned / held.len() as f64,
        sum_kw / held.len() as f64
    );
    println!("\n| per-category mean over sources (of at least {MIN_CATEGORY_PROMPTS} such prompts) | sources | learned | keywords |");
    println!("|---|---|---|---|");
    for k in 0..CLASSES {
        let n = category_sources[k].max(1) as f64;
        println!(
            "| {} | {} | {:.3} | {:.3} |",
            names()[k],
            category_sources[k],
            category_recall[0][k] / n,
            category_recall[1][k] / n
        );
    }
    for v in &variants {
        let recall: Vec<String> = (0..CLASSES)
            .map(|t| {
                let total: usize = v.confusion[t].iter().sum();
                let right = v.confusion[t][t] as f64 / total.max(1) as f64;
                format!("{} {right:.3}", names()[t])
            })
            .collect();
        println!(
            "{}: mean {:.3}; recall {}",
            v.name,
            v.accuracy_sum / held.len() as f64,
            recall.join(", ")
        );
    }
    for (title, m) in [("learned", &confusion), ("keywords", &kw_confusion)] {
        println!("\n{title}: rows are the true label, columns the prediction (held-out prompts pooled)\n");
        println!("| | {} | recall |", names().join(" | "));
        println!("|---|---|---|---|---|---|");
        for (t, row) in m.iter().enumerate() {
            let total: usize = row.iter().sum();
            let cells: Vec<String> = row.iter().map(|c| c.to_string()).collect();
            println!(
                "| {} | {} | {:.3} |",
                names()[t],
                cells.join(" | "),
                row[t] as f64 / total.max(1) as f64
            );
        }
    }
}

fn multilingual(w: &Weights, path: &str) {
    let examples = load(path);
    println!("\n| language | prompt | expected | learned | keywords |");
    println!("|---|---|---|---|---|");
    let (mut ok, mut kw_ok) = (0, 0);
    for e in &examples {
        let l = learned_label(w, &e.text);
        let k = keyword_label(&e.text);
        ok += usize::from(l == e.label);
        kw_ok += usize::from(k == e.label);
        let short: String = e.text.chars().take(48).collect();
        println!(
            "| {} | {} | {} | {}{} | {}{} |",
            e.source,
            short.replace('|', "/").replace('\n', " "),
            names()[e.label],
            names()[l],
            if l == e.label { "" } else { " ✗" },
            names()[k],
            if k == e.label { "" } else { " ✗" },
        );
    }
    println!(
        "| **all** | {} prompts | | **{ok}/{n}** | {kw_ok}/{n} |",
        examples.len(),
        n = examples.len()
    );
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut corpus = "../shared/data/categories/train.jsonl".to_string();
    let mut out = "plugins/smarterrouter/data/classifier.bin".to_string();
    let mut multi = "plugins/smarterrouter/data/multilingual-eval.jsonl".to_string();
    let mut eval = false;
    let mut trainer = Trainer {
        epochs: 4,
        seed: 20261202,
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--corpus" => corpus = args.next().unwrap(),
            "--out" => out = args.next().unwrap(),
            "--multilingual" => multi = args.next().unwrap(),
            "--eval" => eval = true,
            "--epochs" => trainer.epochs = args.next().unwrap().parse().unwrap(),
            "--seed" => trainer.seed = args.next().unwrap().parse().unwrap(),
            other => panic!(
                "unknown argument {other} (see the header of tools/train-classifier/src/main.rs)"
            ),
        }
    }
    let all = load(&corpus);
    eprintln!("{} prompts from {corpus}", all.len());
    if eval {
        evaluate(&trainer, &all);
    }
    let refs: Vec<&Example> = all.iter().collect();
    let w = trainer.train(&refs);
    if std::path::Path::new(&multi).exists() {
        multilingual(&w, &multi);
    }
    if !eval {
        std::fs::write(&out, w.to_bytes()).unwrap();
        eprintln!("wrote {out}");
    }
}
