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

const SHELL_ACTIONS: &[&str] = &[
    "find all files ending in .log",
    "delete every empty directory",
    "count the lines of all .txt files",
    "list the ten largest files",
    "rename every .jpeg file to .jpg",
    "copy all PDFs modified this week",
    "show which process is listening on port 8080",
    "compress each subfolder into its own archive",
    "print the lines that contain \"timeout\"",
    "make every script executable",
    "replace \"foo\" with \"bar\" in all config files",
    "show disk usage per folder, sorted",
    "find files owned by the user backup that are older than 30 days",
    "download a file and check its checksum",
];
const SHELL_PLACES: &[&str] = &[
    "in the current directory",
    "under /var/log",
    "in my home folder",
    "recursively under ./src",
    "on this server",
    "in the directory tree below /data",
];
const SHELL_FORMS: &[&str] = &[
    "How do I {a} {p} from the terminal?",
    "Give me a one-liner to {a} {p}.",
    "What command would {a} {p}?",
    "On Linux, how can I {a} {p}?",
    "{A} {p}. Show me the command.",
    "Using bash, {a} {p}.",
    "I'm on a Mac: how do I {a} {p} in the shell?",
    "Write a shell command that will {a} {p}.",
];
const QUESTIONS: &[&str] = &[
    "Why is the sky blue?",
    "How do vaccines train the immune system?",
    "What causes inflation?",
    "Why do cats purr?",
    "How did the printing press change Europe?",
    "What is the difference between a virus and a bacterium?",
    "Why do we have leap years?",
    "How do noise-cancelling headphones work?",
    "What happened at the Congress of Vienna?",
    "Is it safe to eat raw cookie dough?",
    "What is the proper way to store fresh herbs?",
    "Why did the Roman Empire split in two?",
    "How is a minor chord different from a major chord?",
    "What does a central bank do?",
    "How do bees find their way back to the hive?",
    "Why do some people get seasick?",
];
const WRITING_WRAPPERS: &[&str] = &[
    "You should write a detailed response to the following question.\n[Question]: {q}\n[Requirements]: The answer should be long enough to be comprehensive.",
    "Write a thorough answer to this question: {q}",
    "Answer in a few paragraphs: {q}",
    "Please write an informative reply for a curious reader. {q}",
    "Give me a well-researched explanation. {q}",
];
const SPEAKERS: &[&str] = &[
    "Economist",
    "City council member",
    "Editorial",
    "Sales manager",
    "Biologist",
    "Museum curator",
];
const ARGUMENTS: &[&str] = &[
    "Since the new bus line opened, traffic downtown has fallen. So the bus line reduced traffic",
    "Every successful company we studied had a strong founder. Therefore a strong founder guarantees success",
    "Students who eat breakfast score higher on tests, so schools should serve breakfast to raise scores",
    "The river's fish population fell after the factory opened, which shows the factory polluted the river",
    "Most readers of our magazine prefer short articles, so the public at large prefers short articles",
    "Sales rose after we changed the logo; the new logo must have caused the rise",
];
const STEMS: &[&str] = &[
    "Which one of the following, if true, most weakens the argument?",
    "Which one of the following is an assumption the argument requires?",
    "The reasoning above is most vulnerable to criticism on the grounds that it",
    "Which one of the following most strengthens the conclusion?",
    "If the statements above are true, which one of the following must also be true?",
];
const PASSAGES: &[&str] = &[
    "The old harbour town grew rich on the spice trade in the sixteenth century. When new routes opened, merchants left, and by 1700 the population had halved.",
    "When Maria moved to the city she missed the quiet of the farm, but she found work at a library and slowly came to love the noise of the streets.",
    "Coral reefs cover less than one percent of the ocean floor yet shelter about a quarter of all marine species. Rising water temperatures cause bleaching.",
    "The author recalls her grandfather's workshop, where every tool had a place and the smell of sawdust meant that something new was being made.",
];
const PASSAGE_QUESTIONS: &[&str] = &[
    "According to the passage, why did the population change?",
    "What is the main idea of the passage?",
    "Which statement is supported by the passage?\nA. The first sentence\nB. The second sentence\nC. Neither\nD. Both",
    "The word \"slowly\" in the passage is closest in meaning to",
];

const CONTEXTS: &[&str] = &[
    "Ada Lovelace (1815-1852) was an English mathematician known for her work on Charles Babbage's Analytical Engine. She was the daughter of the poet Lord Byron.",
    "The Danube is Europe's second-longest river. It rises in the Black Forest and flows through ten countries before reaching the Black Sea.",
    "Founded in 1998, the company makes water filters. It employs 450 people, has offices in Lyon and Austin, and reported revenue of 80 million euros last year.",
    "Marie Curie was born in Warsaw in 1867. She won the Nobel Prize in Physics in 1903 and in Chemistry in 1911, and she was the first woman to teach at the Sorbonne.",
    "The meeting is on Tuesday at 10:00 in room 4B. Please bring the quarterly figures; Tom will present the budget and Aisha the hiring plan.",
];
const EXTRACTION_TASKS: &[&str] = &[
    "Extract the answer to the question from the context. Question: when and where was this person born?\nContext: {c}",
    "What key details can be extracted from the following text?\n{c}",
    "Pick one category for the following text: person, place, organisation, event.\n{c}",
    "List the dates mentioned in this text.\n{c}",
    "Summarise the facts in this paragraph in one sentence.\n{c}",
    "Based on this text, answer the question: who is mentioned and what did they do?\n\n{c}",
    "Here is a short bio. Which facts about the person's career does it give?\n{c}",
];
const CASES: &[&str] = &[
    "A 45-year-old patient presents with chest pain that worsens when lying down and improves when sitting forward. What is the most likely diagnosis?",
    "A tenant's landlord kept the whole deposit without giving a reason. What are the tenant's rights under typical consumer law?",
    "Imagine that you are a nurse and a patient on warfarin asks whether they can take ibuprofen. What should you tell them?",
    "A client wants to set up a small business with a friend. Which legal structures should an accountant explain to them?",
    "A farmer notices yellowing leaves on tomato plants, starting at the bottom. What could be causing it?",
    "An employee was dismissed without notice after ten years. What does employment law usually require of the employer?",
    "A child has a fever of 39 degrees and a rash that does not fade under a glass. What should the parents do?",
];

const PROFESSIONS: &[&str] = &[
    "a renowned historian",
    "a marine biologist",
    "a motivational coach",
    "a famous film director",
    "an economist on a talk show",
    "a wise old mentor",
    "Gandalf",
    "a travel blogger",
];
const PERSONA_TASKS: &[&str] = &[
    "Explain to your audience what matters most in your work.",
    "What advice would you give a beginner?",
    "Describe the biggest challenge of your career.",
    "Answer a fan's question about your latest project.",
    "Tell us how you would spend a day in ancient Rome.",
];
const GENRES: &[&str] = &[
    "a blog post",
    "a speech",
    "a press release",
    "a product description",
    "a cover letter",
    "a newsletter",
    "a podcast script",
    "an advertisement",
    "a marketing email",
    "an opinion article",
];
const SUBJECTS: &[&str] = &[
    "our new running shoes",
    "a community clean-up day",
    "the opening of a bakery",
    "remote work",
    "a smart home device",
    "the school's science fair",
];
const WORDS: &[&str] = &[
    "boat", "lake", "cake", "river", "dog", "lamp", "train", "garden",
];

fn fill(form: &str, action: &str, place: &str) -> String {
    let mut capital = action.to_string();
    if let Some(first) = capital.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    form.replace("{a}", action)
        .replace("{A}", &capital)
        .replace("{p}", place)
}

/// Prompts for the error patterns a held-out evaluation showed (written for this project, no
/// outside data): shell tasks told in plain words, knowledge questions wrapped in a writing
/// instruction, arguments to analyse, reading passages with a question, extraction from a
/// given text, professional case questions, role-play and functional writing.
pub fn generate_patterns(rng: &mut Rng, n: usize) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push((
            format!(
                "You are {}. {}",
                pick(rng, PROFESSIONS),
                pick(rng, PERSONA_TASKS)
            ),
            2,
        ));
        let (genre, subject) = (pick(rng, GENRES), pick(rng, SUBJECTS));
        out.push((
            format!("Write {genre} about {subject}, about 500 words, in a friendly tone."),
            2,
        ));
        out.push((
            format!("I need {genre} for {subject}. Keep it professional and clear."),
            2,
        ));
        out.push((
            format!(
                "Make up a sentence that uses the words {}, {} and {}.",
                pick(rng, WORDS),
                pick(rng, WORDS),
                pick(rng, WORDS)
            ),
            2,
        ));
        out.push((
            format!("Build a movie plot around this: {}", pick(rng, TOPICS)),
            2,
        ));
        out.push((
            "请帮我写一份关于智能家居新品发布的演讲稿，语言生动，约十分钟。".to_string(),
            2,
        ));
        let form = pick(rng, SHELL_FORMS);
        out.push((
            fill(form, pick(rng, SHELL_ACTIONS), pick(rng, SHELL_PLACES)),
            0,
        ));
        let wrapper = pick(rng, WRITING_WRAPPERS);
        out.push((wrapper.replace("{q}", pick(rng, QUESTIONS)), 3));
        out.push((
            format!(
                "{}: {}.\n{}",
                pick(rng, SPEAKERS),
                pick(rng, ARGUMENTS),
                pick(rng, STEMS)
            ),
            1,
        ));
        out.push((
            format!(
                "Read the passage and answer the question.\n\n{}\n\n{}",
                pick(rng, PASSAGES),
                pick(rng, PASSAGE_QUESTIONS)
            ),
            3,
        ));
        out.push((
            pick(rng, EXTRACTION_TASKS).replace("{c}", pick(rng, CONTEXTS)),
            3,
        ));
        out.push((pick(rng, CASES).to_string(), 3));
    }
    out
}

const ZH_TOPICS: &[&str] = &[
    "光合作用",
    "细胞分裂",
    "丝绸之路",
    "工业革命",
    "长江流域的气候",
    "秦朝的统一",
    "板块运动",
    "水循环",
    "季风的形成",
    "文艺复兴",
    "科举制度",
    "DNA的复制",
    "城市化",
    "人口迁移",
    "酸雨的成因",
    "辛亥革命",
    "血液循环",
    "地球公转",
];
const ZH_STATEMENTS: &[&str] = &[
    "该过程需要光照",
    "主要发生在线粒体中",
    "与温度变化无关",
    "促进了商品经济的发展",
    "导致了人口大量减少",
    "受地形和纬度影响较大",
    "加强了中央集权",
    "只发生在植物细胞中",
    "使交通运输更加便利",
    "降低了农业生产效率",
];
const ZH_STORY_SUBJECTS: &[&str] = &[
    "一只想飞的小猫",
    "故乡的春天",
    "一次难忘的旅行",
    "外婆的厨房",
    "未来的城市",
    "雨夜里的书店",
    "我的好朋友",
];
const ZH_GENRES: &[&str] = &[
    "一首诗",
    "一篇散文",
    "一个短篇故事",
    "一篇800字的作文",
    "一段广告文案",
    "一封感谢信",
    "一篇演讲稿",
    "一段对话",
];
const JA_TOPICS: &[&str] = &[
    "光合成",
    "明治維新",
    "産業革命",
    "火山の噴火",
    "日本の四季",
    "江戸時代の文化",
    "細胞の構造",
    "地球温暖化",
];
const JA_GENRES: &[&str] = &[
    "詩",
    "短い物語",
    "手紙",
    "エッセイ",
    "俳句",
    "スピーチの原稿",
];
const EU_TOPICS: &[(&str, &str, &str)] = &[
    ("la fotosíntesis", "la photosynthèse", "die Photosynthese"),
    (
        "la Revolución Industrial",
        "la révolution industrielle",
        "die industrielle Revolution",
    ),
    (
        "el ciclo del agua",
        "le cycle de l'eau",
        "den Wasserkreislauf",
    ),
    ("el Imperio romano", "l'Empire romain", "das Römische Reich"),
    ("los volcanes", "les volcans", "Vulkane"),
];
const EU_SUBJECTS: &[(&str, &str, &str)] = &[
    (
        "un gato que sueña con volar",
        "un chat qui rêve de voler",
        "eine Katze, die fliegen will",
    ),
    (
        "el primer día de otoño",
        "le premier jour de l'automne",
        "den ersten Herbsttag",
    ),
    (
        "un faro abandonado",
        "un phare abandonné",
        "einen verlassenen Leuchtturm",
    ),
    ("mi abuela", "ma grand-mère", "meine Großmutter"),
];

/// More prompts in other languages (written for this project, no outside data), so that no script
/// or language belongs to the category of the few sources that happen to be written in it: each
/// category in Chinese and Japanese (knowledge questions as exam multiple choice, explanations and
/// translation requests, which the corpus's exams label factual; writing requests; logic and
/// number puzzles; a coding task in Chinese, the first set having Japanese ones), and knowledge
/// questions and story requests in Spanish, French and German, with a syllogism in German.
pub fn generate_languages(rng: &mut Rng, n: usize) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    for _ in 0..n {
        let topic = pick(rng, ZH_TOPICS);
        let mut options = String::new();
        for letter in ["A", "B", "C", "D"] {
            options.push_str(&format!("\n{letter}. {}", pick(rng, ZH_STATEMENTS)));
        }
        for text in [
            format!("下列关于{topic}的叙述，正确的是（ ）{options}"),
            format!("请简要介绍{topic}的历史和意义。"),
            format!("{topic}的主要特点是什么？"),
            format!(
                "阅读材料：{topic}{}。据此回答：材料反映了什么？",
                pick(rng, ZH_STATEMENTS)
            ),
            format!(
                "请把下面的句子翻译成英文：{topic}{}。",
                pick(rng, ZH_STATEMENTS)
            ),
        ] {
            out.push((text, 3));
        }
        let (subject, genre) = (pick(rng, ZH_STORY_SUBJECTS), pick(rng, ZH_GENRES));
        for text in [
            format!("以“{subject}”为题，写{genre}。"),
            format!("请帮我写{genre}，主题是{subject}，语言要生动。"),
        ] {
            out.push((text, 2));
        }
        let (x, y, z) = (3 + rng.below(20), 2 + rng.below(9), 2 + rng.below(5));
        for text in [
            "甲、乙、丙三人中只有一人说了真话。甲说：“乙在说谎。”乙说：“丙在说谎。”丙说：“甲和乙都在说谎。”谁说了真话？".to_string(),
            format!("某数先加{y}，再乘以{z}，结果是{}。求某数，并写出推理过程。", (x + y) * z),
            format!("如果所有的{subject}都很安静，而有些安静的东西是蓝色的，能否推出有些{subject}是蓝色的？"),
        ] {
            out.push((text, 1));
        }
        out.push((
            format!("请实现一个Python函数：输入一个字符串列表，返回其中“{topic}”出现的次数。"),
            0,
        ));
        let ja = pick(rng, JA_TOPICS);
        for text in [
            format!(
                "{ja}について正しいものはどれか。\nA. {}\nB. {}\nC. {}\nD. {}",
                pick(rng, ZH_STATEMENTS),
                pick(rng, ZH_STATEMENTS),
                pick(rng, ZH_STATEMENTS),
                pick(rng, ZH_STATEMENTS)
            ),
            format!("{ja}とは何ですか？簡単に説明してください。"),
        ] {
            out.push((text, 3));
        }
        out.push((
            format!("{ja}をテーマに{}を書いてください。", pick(rng, JA_GENRES)),
            2,
        ));
        out.push((
            format!("箱に赤い玉が{x}個、白い玉が{y}個あります。{z}個取り出すとき、必ず同じ色が2個含まれるのは何個以上取り出したときですか？"),
            1,
        ));
        let (es, fr, de) = EU_TOPICS[rng.below(EU_TOPICS.len())];
        let (ses, sfr, sde) = EU_SUBJECTS[rng.below(EU_SUBJECTS.len())];
        for (text, label) in [
            (format!("¿Qué sabes sobre {es}? Explícalo brevemente."), 3),
            (format!("Escríbeme un relato breve sobre {ses}."), 2),
            (format!("Que sais-tu sur {fr} ? Explique brièvement."), 3),
            (format!("Raconte-moi une histoire sur {sfr}."), 2),
            (format!("Erkläre kurz {de}."), 3),
            (format!("Erzähl mir eine Geschichte über {sde}."), 2),
            (
                format!(
                    "Alle Rosen sind Blumen. Manche Blumen {}. Folgt daraus, dass manche Rosen {}?",
                    ["welken schnell", "duften stark", "sind gelb"][rng.below(3)],
                    ["schnell welken", "stark duften", "gelb sind"][rng.below(3)]
                ),
                1,
            ),
        ] {
            out.push((text, label));
        }
    }
    out
}
