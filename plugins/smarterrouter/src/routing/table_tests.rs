//! The routing table: prompts of every kind against a fixed set of model facts, with the
//! expected choice at quality preference 0, 0.5 and 1; and property tests of the engine.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::analysis::analyse;
use super::score::ScoringSettings;
use super::score_facts;
use crate::api::prompt::PromptView;
use crate::model::facts::{Capabilities, FactSource, ModelFacts};

fn model(name: &str, params: f32, caps: &[&str]) -> ModelFacts {
    let has = |c: &str| caps.contains(&c);
    ModelFacts {
        name: name.to_string(),
        params_b: Some(params),
        size_bytes: (params * 0.6e9) as u64,
        family: "llama".to_string(),
        capabilities: Capabilities {
            completion: !has("embedding"),
            vision: has("vision"),
            tools: has("tools"),
            embedding: has("embedding"),
            thinking: has("thinking"),
        },
        source: FactSource::Node,
        context_length: Some(8192),
        loaded: false,
    }
}

/// A typical home-lab set: small and large general models, a coder, a reasoner, two vision
/// models and an embedding model.
fn lab() -> Vec<ModelFacts> {
    vec![
        model("llama3.2:1b", 1.2, &["tools"]),
        model("llama3.2:3b", 3.2, &["tools"]),
        model("qwen2.5-coder:7b", 7.6, &["tools"]),
        model("deepseek-r1:14b", 14.8, &["thinking"]),
        model("llama3.1:70b", 70.6, &["tools"]),
        model("llava:7b", 7.2, &["vision"]),
        model("gemma3:4b", 4.3, &["vision"]),
        model("nomic-embed-text:latest", 0.14, &["embedding"]),
    ]
}

fn choose(body: &Value, q: f32) -> String {
    let map = body.as_object().cloned().unwrap_or_default();
    let analysis = analyse(&PromptView::from_body(&map));
    let settings = ScoringSettings {
        quality_preference: q,
        ..ScoringSettings::default()
    };
    score_facts(&analysis, &lab(), &settings)
        .map(|s| s.decision.model)
        .unwrap_or_default()
}

fn user(text: &str) -> Value {
    json!({"messages": [{"role": "user", "content": text}]})
}

fn long_coding_prompt() -> String {
    let mut p =
        String::from("Refactor this service for performance and add unit tests:\n```python\n");
    for i in 0..200 {
        p.push_str(&format!(
            "def handler_{i}(request):\n    return process(request, {i})\n"
        ));
    }
    p.push_str("```\n");
    p
}

fn cases() -> Vec<(&'static str, Value, [&'static str; 3])> {
    let image = json!({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is in this picture?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}]});
    let ollama_image = json!({"messages": [{"role": "user", "content": "Describe this photo", "images": ["iVBORw0KGgo="]}]});
    let tools = json!({"messages": [{"role": "user", "content": "What's the weather in Paris?"}],
                       "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]});
    let multi_turn = json!({"messages": [
        {"role": "user", "content": "Write a poem about autumn"},
        {"role": "assistant", "content": "Leaves fall..."},
        {"role": "user", "content": "Now implement a Rust function that sorts a vector of structs by two keys"}]});
    let system_coder = json!({"messages": [
        {"role": "system", "content": "You are an expert software engineer. Answer with code."},
        {"role": "user", "content": "How do I reverse a linked list?"}]});
    vec![
        // trivial and general: fastest at q=0 and 0.5, the biggest at q=1
        ("greeting", user("hi"), ["llama3.2:1b", "llama3.2:1b", "llama3.1:70b"]),
        ("thanks", user("thanks, that helped!"), ["llama3.2:1b", "llama3.2:1b", "llama3.1:70b"]),
        ("capital (was coding in the original)", user("What is the capital of France?"), ["llama3.2:1b", "llama3.2:1b", "llama3.1:70b"]),
        ("define", user("Define photosynthesis."), ["llama3.2:1b", "llama3.2:1b", "llama3.1:70b"]),
        ("history", user("Tell me about the history of the Roman empire"), ["llama3.2:1b", "llama3.2:1b", "llama3.1:70b"]),
        ("summarize", user("Summarize the main causes of World War I in three bullet points"), ["llama3.2:1b", "llama3.2:1b", "llama3.1:70b"]),
        ("explain detailed", user("Explain in detailed, comprehensive terms how TCP congestion control works"), ["llama3.2:1b", "llama3.2:1b", "llama3.1:70b"]),
        // coding
        ("python function", user("Write a python function to parse JSON"), ["llama3.2:1b", "qwen2.5-coder:7b", "llama3.1:70b"]),
        ("debug", user("Debug this: my javascript code throws undefined is not a function"), ["llama3.2:1b", "qwen2.5-coder:7b", "llama3.1:70b"]),
        ("sql", user("Write an SQL query that returns the top 5 customers by revenue"), ["llama3.2:1b", "qwen2.5-coder:7b", "llama3.1:70b"]),
        ("code fence", user("Why does this fail?\n```\nlet x: u32 = -1;\n```"), ["llama3.2:1b", "qwen2.5-coder:7b", "llama3.1:70b"]),
        ("hard coding", user("Implement a lock-free concurrent hash map in Rust with generics, unit tests and detailed comments on the memory ordering"), ["qwen2.5-coder:7b", "qwen2.5-coder:7b", "llama3.1:70b"]),
        ("architecture", user("Design a scalable distributed architecture for a production-ready recursive graph algorithm"), ["qwen2.5-coder:7b", "qwen2.5-coder:7b", "llama3.1:70b"]),
        ("system prompt coder", system_coder, ["llama3.2:1b", "llama3.2:1b", "llama3.1:70b"]),
        ("multi-turn switches to code", multi_turn, ["llama3.2:1b", "qwen2.5-coder:7b", "llama3.1:70b"]),
        ("long coding prompt", user(&long_coding_prompt()), ["qwen2.5-coder:7b", "qwen2.5-coder:7b", "llama3.1:70b"]),
        // math and reasoning: a reasoning specialist counts as a much larger model, so it wins at
        // q=1 too; at q=0 the fastest model that meets the category's minimum size
        ("arithmetic", user("Calculate 17% of 2340"), ["llama3.2:1b", "llama3.2:1b", "deepseek-r1:14b"]),
        ("train puzzle", user("Solve: if a train goes 60 mph for 2 hours, how far does it go? Explain step-by-step reasoning"), ["llama3.2:1b", "deepseek-r1:14b", "deepseek-r1:14b"]),
        ("proof", user("Prove that the square root of 2 is irrational with a rigorous proof"), ["gemma3:4b", "deepseek-r1:14b", "deepseek-r1:14b"]),
        ("probability", user("What is the probability of rolling two sixes with two dice? Show the equation."), ["llama3.2:1b", "llama3.2:1b", "llama3.1:70b"]),
        ("logic riddle", user("Solve this logic puzzle: three boxes are all labelled wrong..."), ["llama3.2:1b", "deepseek-r1:14b", "deepseek-r1:14b"]),
        // creative
        ("poem", user("Write a poem about the sea"), ["llama3.2:1b", "llama3.2:1b", "llama3.1:70b"]),
        ("haiku", user("Write a haiku about autumn leaves"), ["llama3.2:1b", "llama3.2:1b", "llama3.1:70b"]),
        ("story", user("Write a short fantasy story with a dragon character and a surprising scene"), ["llama3.2:1b", "llama3.2:1b", "llama3.1:70b"]),
        ("joke", user("Tell me a joke about programmers"), ["llama3.2:1b", "llama3.2:1b", "llama3.1:70b"]),
        // vision: only vision models, the small one when speed matters
        ("image (OpenAI parts)", image, ["gemma3:4b", "gemma3:4b", "llava:7b"]),
        ("image (Ollama images)", ollama_image, ["gemma3:4b", "gemma3:4b", "llava:7b"]),
        // tools: only tool-capable models
        ("tools", tools, ["llama3.2:1b", "llama3.2:1b", "llama3.1:70b"]),
        // non-English
        ("spanish poem", user("Escribe un poema sobre el mar"), ["llama3.2:1b", "llama3.2:1b", "llama3.1:70b"]),
        ("german code", user("Schreibe eine Funktion in Python, die eine Liste sortiert"), ["llama3.2:1b", "qwen2.5-coder:7b", "llama3.1:70b"]),
        ("chinese code", user("写一个排序函数的代码"), ["llama3.2:1b", "qwen2.5-coder:7b", "llama3.1:70b"]),
        ("japanese question", user("東京タワーとは何ですか？"), ["llama3.2:1b", "llama3.2:1b", "llama3.1:70b"]),
        // very long non-code text: hard by length, so at least the 4B minimum
        ("very long essay", user(&"The history of the printing press is long. ".repeat(3000)), ["gemma3:4b", "gemma3:4b", "llama3.1:70b"]),
    ]
}

#[test]
fn routing_table() {
    let mut failures = Vec::new();
    let cases = cases();
    assert!(cases.len() >= 30);
    for (name, body, expected) in &cases {
        for (i, q) in [0.0, 0.5, 1.0].into_iter().enumerate() {
            let got = choose(body, q);
            if got != expected[i] {
                failures.push(format!(
                    "{name} at q={q}: expected {}, got {got}",
                    expected[i]
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn embedding_models_are_never_chosen_for_chat() {
    for (_, body, _) in cases() {
        for q in [0.0, 0.5, 1.0] {
            assert_ne!(choose(&body, q), "nomic-embed-text:latest");
        }
    }
}

#[test]
fn vision_without_vision_models_falls_back_with_a_reason() {
    let facts: Vec<ModelFacts> = lab()
        .into_iter()
        .filter(|m| !m.capabilities.vision)
        .collect();
    let body =
        json!({"messages": [{"role": "user", "content": "What is this?", "images": ["AAAA"]}]});
    let map = body.as_object().cloned().unwrap_or_default();
    let scored = score_facts(
        &analyse(&PromptView::from_body(&map)),
        &facts,
        &ScoringSettings::default(),
    )
    .unwrap();
    assert!(
        scored.decision.reason.contains("no vision-capable model"),
        "{}",
        scored.decision.reason
    );
}

#[test]
fn a_loaded_model_wins_a_close_call() {
    let mut facts = lab();
    let body = user("Write a short poem about the sea");
    let map = body.as_object().cloned().unwrap_or_default();
    let analysis = analyse(&PromptView::from_body(&map));
    let settings = ScoringSettings::default();
    assert_eq!(
        score_facts(&analysis, &facts, &settings)
            .unwrap()
            .decision
            .model,
        "llama3.2:1b"
    );
    for f in facts.iter_mut() {
        f.loaded = f.name == "llama3.2:3b";
    }
    let scored = score_facts(&analysis, &facts, &settings).unwrap();
    assert_eq!(
        scored.decision.model, "llama3.2:3b",
        "{}",
        scored.decision.reason
    );
    assert!(scored.decision.reason.contains("loaded"));
}

#[test]
fn pinned_model_is_preferred_for_simple_prompts_only() {
    let settings = ScoringSettings {
        pinned_model: Some("llama3.2:3b".to_string()),
        ..ScoringSettings::default()
    };
    let pick = |text: &str| {
        let body = user(text);
        let map = body.as_object().cloned().unwrap_or_default();
        score_facts(&analyse(&PromptView::from_body(&map)), &lab(), &settings)
            .unwrap()
            .decision
            .model
    };
    assert_eq!(pick("hi"), "llama3.2:3b");
    assert_eq!(
        pick("Prove that the square root of 2 is irrational with a rigorous proof"),
        "deepseek-r1:14b"
    );
}

#[test]
fn decisions_are_deterministic_and_confidence_bounded() {
    for (_, body, _) in cases() {
        let map = body.as_object().cloned().unwrap_or_default();
        let analysis = analyse(&PromptView::from_body(&map));
        let a = score_facts(&analysis, &lab(), &ScoringSettings::default()).unwrap();
        let b = score_facts(&analysis, &lab(), &ScoringSettings::default()).unwrap();
        assert_eq!(a, b);
        assert!((0.0..=1.0).contains(&a.decision.confidence));
        assert!(a.runner_up.is_some());
    }
}

fn arbitrary_models() -> impl Strategy<Value = Vec<ModelFacts>> {
    prop::collection::vec((0.1f32..120.0, any::<bool>(), any::<bool>()), 1..12).prop_map(|specs| {
        specs
            .into_iter()
            .enumerate()
            .map(|(i, (params, loaded, tools))| {
                let mut m = model(
                    &format!("model-{i}"),
                    params,
                    if tools { &["tools"] } else { &[] },
                );
                m.loaded = loaded;
                m
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_utf8_input_analyses_without_panic(text in any::<String>(), turns in 1usize..4) {
        let texts: Vec<&str> = (0..turns).map(|_| text.as_str()).collect();
        let view = PromptView { user_turns: texts, system: vec![text.as_str()], ..PromptView::default() };
        let a = analyse(&view);
        prop_assert!((0.0..=1.0).contains(&a.complexity));
        prop_assert!(a.scores.iter().all(|s| (0.0..=1.0).contains(s)));
    }

    #[test]
    fn raising_quality_preference_never_picks_a_smaller_model_for_hard_prompts(
        models in arbitrary_models(),
        q1 in 0.0f32..1.0,
        dq in 0.0f32..1.0,
        prompt in prop::sample::select(vec![
            "Implement a lock-free concurrent hash map in Rust with generics and unit tests",
            "Prove that there are infinitely many primes with a rigorous, detailed proof",
            "Design a scalable distributed architecture for a production-ready system, step-by-step",
        ]),
    ) {
        let q2 = (q1 + dq).min(1.0);
        let analysis = analyse(&PromptView::from_prompt(prompt));
        prop_assume!(analysis.complexity >= 0.5);
        let at = |q: f32| {
            let settings = ScoringSettings { quality_preference: q, ..ScoringSettings::default() };
            let chosen = score_facts(&analysis, &models, &settings).unwrap().decision.model;
            models.iter().find(|m| m.name == chosen).and_then(|m| m.params_b).unwrap_or(0.0)
        };
        prop_assert!(at(q2) >= at(q1), "q {} -> {} picked a smaller model", q1, q2);
    }
}

/// Prompts of each pattern the keyword analyser gets wrong (reasoning with no reasoning
/// keyword, everyday senses of coding words, questions about books, role-play and writing
/// requests without a creative keyword, "json" in an extraction task, inflected forms): the
/// learned classifier gets nearly all of them, and more than the keywords do.
#[test]
fn the_learned_classifier_fixes_the_keyword_analysers_error_patterns() {
    use crate::routing::analysis::{analyse_with, Category};
    use crate::routing::classifier::SHIPPED;
    let cases = [
        ("Three friends share a pizza cut into 8 slices. Ana eats 3, Ben eats twice as many as Chen, and nothing is left. How many slices did Chen eat?", Category::Reasoning),
        ("∫ x^2 dx from 0 to 3 = ?", Category::Reasoning),
        ("Given p → q and ¬q, what follows for p?", Category::Reasoning),
        ("White: Kg1, Qh5. Black: Kg8, pawns f7 g7 h7. Find mate in one.", Category::Reasoning),
        ("I need help with mathematical reasoning: show that the sum of two odd numbers is even.", Category::Reasoning),
        ("What is the function of the liver in the human body?", Category::Factual),
        ("What is a class action lawsuit?", Category::Factual),
        ("How does the genetic code determine the order of amino acids?", Category::Factual),
        ("Who is the narrator of Moby-Dick and what is Captain Ahab obsessed with?", Category::Factual),
        ("You are a tour guide in Rome. Welcome our group and tell us what we will see today.", Category::Creativity),
        ("Draft a speech for my grandfather's 80th birthday party.", Category::Creativity),
        ("Write a sonnet about a broken phone.", Category::Creativity),
        ("Write a bash command that lists the ten largest files in this directory.", Category::Coding),
        ("Why does my Rust code say 'borrowed value does not live long enough'?", Category::Coding),
    ];
    let learned = SHIPPED.as_ref().unwrap();
    let (mut ok, mut keyword_ok) = (0, 0);
    let mut wrong = Vec::new();
    for (prompt, expected) in cases {
        let view = PromptView::from_prompt(prompt);
        let got = analyse_with(&view, Some(learned)).dominant();
        ok += usize::from(got == expected);
        keyword_ok += usize::from(analyse(&view).dominant() == expected);
        if got != expected {
            wrong.push(format!("{prompt} -> {got:?}"));
        }
    }
    eprintln!(
        "learned {ok}/{}, keywords {keyword_ok}; wrong: {wrong:#?}",
        cases.len()
    );
    assert!(ok >= cases.len() - 3, "{ok}/{}: {wrong:#?}", cases.len());
    assert!(ok > keyword_ok, "learned {ok}, keywords {keyword_ok}");
}
