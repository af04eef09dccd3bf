//! Prints the semantic cache's quality table (README): per threshold, the share of paraphrase
//! pairs that hit and the near-miss pairs that falsely hit, by cosine alone and with the guard.
//! Reads `benches/semantic/pairs.jsonl` and `embeddings.json` (see `benches/semantic/run.sh`).

use smarterrouter_plugin::cache::semantic::quality::{evaluate, load, THRESHOLDS};

fn main() -> Result<(), String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../benches/semantic");
    let pairs = load(&dir)?;
    let paraphrases = pairs.iter().filter(|p| p.paraphrase).count();
    println!(
        "{} pairs: {} paraphrases, {} near-misses (all-MiniLM-L6-v2)\n",
        pairs.len(),
        paraphrases,
        pairs.len() - paraphrases
    );
    println!("| threshold | paraphrases hit (cosine) | false hits (cosine) | paraphrases hit (cosine + guard) | false hits (cosine + guard) |");
    println!("|---|---|---|---|---|");
    for threshold in THRESHOLDS {
        let plain = evaluate(&pairs, threshold, false);
        let guarded = evaluate(&pairs, threshold, true);
        println!(
            "| {threshold:.2} | {:.1}% ({}/{}) | {} ({:.1}%) | {:.1}% ({}/{}) | {} ({:.1}%) |",
            plain.hit_rate() * 100.0,
            plain.paraphrase_hits,
            plain.paraphrases,
            plain.false_hits,
            plain.false_hit_rate() * 100.0,
            guarded.hit_rate() * 100.0,
            guarded.paraphrase_hits,
            guarded.paraphrases,
            guarded.false_hits,
            guarded.false_hit_rate() * 100.0,
        );
    }
    println!();
    for threshold in THRESHOLDS {
        let plain = evaluate(&pairs, threshold, false);
        println!(
            "false hits by kind at {threshold:.2}, cosine alone: {:?}",
            plain.false_by_kind
        );
    }
    if std::env::args().any(|a| a == "--details") {
        let at = 0.75;
        for (a, b, c) in evaluate(&pairs, at, true).false_examples {
            println!("false hit with the guard at {at}: {c:.3} {a:?} / {b:?}");
        }
        for pair in pairs.iter().filter(|p| p.paraphrase && p.cosine >= at) {
            if !smarterrouter_plugin::cache::semantic::guard_passes(&pair.a, &pair.b) {
                println!(
                    "guard refused a paraphrase: {:.3} {:?} / {:?}",
                    pair.cosine, pair.a, pair.b
                );
            }
        }
    }
    Ok(())
}
