//! Prompts written for this project (no outside data), generated from templates with fixed-seed
//! choices: role-play and writing requests told without a creative keyword, reasoning told as a
//! story or in notation, knowledge questions as multiple choice, and each category in Spanish,
//! French, German, Chinese and Japanese, so that neither format nor language belongs to one
//! category. Listed in the README as a training source.

use super::Rng;

const ROLES: &[&str] = &[
    "a pirate captain",
    "a medieval blacksmith",
    "a detective in 1920s Chicago",
    "a tour guide on Mars",
    "a grumpy wizard",
    "a nervous job candidate",
    "Sherlock Holmes",
    "a talking cat",
    "a Roman senator",
    "a customer service agent for a dragon rental company",
    "an astronaut on her last day in orbit",
    "a chef judging a cooking contest",
    "a lighthouse keeper",
    "a time traveller from 3000",
];
const TASKS: &[&str] = &[
    "greet a visitor who has just arrived",
    "describe your typical day",
    "give advice to a young apprentice",
    "explain why you chose this life",
    "convince me to join your crew",
    "tell me about your greatest fear",
    "react to the news that the king has died",
    "answer my questions about your home town",
];
const FORMS: &[&str] = &[
    "a poem",
    "a short story",
    "a limerick",
    "song lyrics",
    "a haiku",
    "a dialogue",
    "a fairy tale",
    "a product slogan",
    "a wedding toast",
    "a monologue",
    "a letter from the future",
    "a bedtime story",
];
const TOPICS: &[&str] = &[
    "the sea at night",
    "a lost umbrella",
    "friendship",
    "the first snow",
    "a robot learning to dance",
    "an old library",
    "autumn leaves",
    "a city that never sleeps",
    "a dog waiting at the station",
];
const PLACES: &[&str] = &[
    "France", "Japan", "Brazil", "Kenya", "Canada", "Egypt", "Norway", "India",
];
const THINGS: &[&str] = &["apples", "marbles", "books", "coins", "tickets", "stamps"];
const NAMES: &[&str] = &[
    "Ana", "Ben", "Chen", "Dara", "Emil", "Fatima", "Goro", "Hana",
];

fn pick<'a>(rng: &mut Rng, list: &[&'a str]) -> &'a str {
    list[rng.below(list.len())]
}

/// `n` prompts per (category, language), as (text, label index).
pub fn generate(rng: &mut Rng, n: usize) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    for _ in 0..n {
        let role = pick(rng, ROLES);
        let task = pick(rng, TASKS);
        let form = pick(rng, FORMS);
        let topic = pick(rng, TOPICS);
        let place = pick(rng, PLACES);
        let thing = pick(rng, THINGS);
        let (a, b) = (pick(rng, NAMES), pick(rng, NAMES));
        let (x, y, z) = (2 + rng.below(40), 2 + rng.below(30), 1 + rng.below(9));
        // creativity (2), in English
        for text in [
            format!("Imagine you are {role}. {task}."),
            format!("You are {role}. In character, {task}."),
            format!("Pretend to be {role} and {task}."),
            format!("Write {form} about {topic}."),
            format!("Compose {form} about {topic} for my sister's birthday."),
            format!("Could you come up with {form} about {topic}?"),
        ] {
            out.push((text, 2));
        }
        // reasoning (1), told as a story or in notation
        for text in [
            format!("{a} has {x} {thing} and gives {y} to {b}, then buys {z} more. How many {thing} does {a} have now?"),
            format!("If {z} workers build a wall in {x} days, how long do {} workers take?", z * 2),
            format!("Solve for x: {z}x + {y} = {}", z * x + y),
            format!("All {thing} in the box are red. Some red things are heavy. Does it follow that some {thing} are heavy?"),
            format!("{a} is older than {b}. {b} is older than Chen. Who is the youngest?"),
            format!("What is the next number: {x}, {}, {}, {}, ?", x + z, x + 2 * z, x + 3 * z),
        ] {
            out.push((text, 1));
        }
        // factual (3), as questions and as multiple choice
        for text in [
            format!("What is the capital of {place}?\nA. Lima\nB. Oslo\nC. Cairo\nD. Ottawa"),
            format!("Which language is most widely spoken in {place}?"),
            format!("When did {place} become independent? Choose one: (A) 1945 (B) 1960 (C) 1867 (D) 1814"),
            format!("Tell me about the history of {place}."),
        ] {
            out.push((text, 3));
        }
        // coding (0)
        for text in [
            format!("Write a function that counts the {thing} in a list and returns the total."),
            format!("How do I read a CSV file about {thing} in Python and sum the third column?"),
        ] {
            out.push((text, 0));
        }
        // Other languages: each category.
        for (text, label) in [
            (format!("Escribe un cuento sobre {topic}."), 2),
            (
                format!("Imagina que eres {role} y saluda a un visitante."),
                2,
            ),
            (
                format!("Resuelve: {z}x + {y} = {}. Explica los pasos.", z * x + y),
                1,
            ),
            (
                format!("{a} tiene {x} manzanas y regala {y}. ¿Cuántas le quedan?"),
                1,
            ),
            (format!("¿Cuál es la capital de {place}?"), 3),
            (
                "Escribe una función en Python que ordene una lista.".to_string(),
                0,
            ),
            (format!("Écris un poème sur {topic}."), 2),
            (
                "Raconte une histoire d'un chat qui rêve de voler.".to_string(),
                2,
            ),
            (format!("Résous l'équation {z}x + {y} = {}.", z * x + y), 1),
            (
                format!("{a} a {x} pommes et en donne {y}. Combien lui en reste-t-il ?"),
                1,
            ),
            (format!("Quelle est la capitale de {place} ?"), 3),
            (
                "Écris une fonction JavaScript qui inverse un tableau.".to_string(),
                0,
            ),
            (format!("Schreibe eine Geschichte über {topic}."), 2),
            ("Schreibe ein Gedicht über den Herbst.".to_string(), 2),
            (format!("Löse die Gleichung {z}x + {y} = {}.", z * x + y), 1),
            (
                format!("{a} hat {x} Äpfel und gibt {y} ab. Wie viele bleiben übrig?"),
                1,
            ),
            (format!("Was ist die Hauptstadt von {place}?"), 3),
            (
                "Schreibe eine Funktion in Python, die eine Liste sortiert.".to_string(),
                0,
            ),
            ("写一首关于大海的诗。".to_string(), 2),
            ("写一个关于小狗的故事。".to_string(), 2),
            (format!("解方程 {z}x + {y} = {}。", z * x + y), 1),
            (format!("小明有{x}个苹果，给了朋友{y}个，还剩几个？"), 1),
            ("法国的首都是哪里？".to_string(), 3),
            ("用Python写一个排序函数。".to_string(), 0),
            ("海についての詩を書いてください。".to_string(), 2),
            ("猫が主人公の物語を書いてください。".to_string(), 2),
            (
                format!("方程式 {z}x + {y} = {} を解いてください。", z * x + y),
                1,
            ),
            (
                format!("りんごが{x}個あり、{y}個食べました。残りは何個ですか？"),
                1,
            ),
            ("フランスの首都はどこですか？".to_string(), 3),
            (
                "Pythonでリストを並べ替える関数を書いてください。".to_string(),
                0,
            ),
        ] {
            out.push((text, label));
        }
    }
    out
}
