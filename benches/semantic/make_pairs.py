"""Writes pairs.jsonl: the labelled prompt pairs the semantic cache is measured on.

`paraphrase` pairs ask the same thing in other words (a hit is right); `near_miss` pairs differ
in one thing that changes the answer (a number, a country or city, a negation or opposite, a
programming language, a person, a unit) and must never hit. Hand-written groups, combined
deterministically; run `python3 make_pairs.py > pairs.jsonl`."""

import itertools
import json

PARAPHRASES = [
    ["What is the capital of France?", "Which city is the capital of France?", "Tell me the capital city of France."],
    ["How do I reverse a list in Python?", "What's the way to reverse a Python list?", "Show me how to reverse a list using Python."],
    ["Explain how photosynthesis works.", "Can you explain the process of photosynthesis?", "How does photosynthesis work?"],
    ["What are the symptoms of the flu?", "What symptoms does influenza cause?", "How can I tell if I have the flu? What are the symptoms?"],
    ["Write a haiku about autumn leaves.", "Compose a haiku on autumn leaves.", "Can you write me a haiku about leaves in autumn?"],
    ["How do I reset my password?", "How can I reset my password?", "What are the steps to reset my password?"],
    ["What is the boiling point of water at sea level?", "At sea level, what temperature does water boil at?", "Tell me water's boiling point at sea level."],
    ["Summarize the plot of Romeo and Juliet.", "Give me a summary of the plot of Romeo and Juliet.", "What happens in Romeo and Juliet? Summarize the plot."],
    ["What is the difference between a list and a tuple in Python?", "How does a Python list differ from a tuple?", "Explain the difference between tuples and lists in Python."],
    ["How many planets are in the solar system?", "How many planets does our solar system have?", "What is the number of planets in the solar system?"],
    ["Who wrote Pride and Prejudice?", "Who is the author of Pride and Prejudice?", "Pride and Prejudice was written by whom?"],
    ["What causes the seasons on Earth?", "Why does Earth have seasons?", "Explain what causes Earth's seasons."],
    ["How do I make a cup of green tea?", "What's the best way to brew green tea?", "How should I prepare green tea?"],
    ["What is machine learning?", "Can you explain what machine learning is?", "Define machine learning."],
    ["Give me tips for better sleep.", "What are some tips to sleep better?", "How can I improve my sleep? Give me tips."],
    ["How does a vaccine work?", "Explain how vaccines work.", "What is the mechanism by which a vaccine works?"],
    ["What is the speed of light?", "How fast does light travel?", "Tell me the speed of light."],
    ["How do I center a div in CSS?", "What's the way to center a div with CSS?", "How can I center a div using CSS?"],
    ["What is a black hole?", "Can you explain what a black hole is?", "Describe what a black hole is."],
    ["Translate 'good morning' into Spanish.", "How do you say 'good morning' in Spanish?", "What is 'good morning' in Spanish?"],
    ["What are the benefits of regular exercise?", "Why is regular exercise good for you?", "What benefits does exercising regularly bring?"],
    ["How do I create a virtual environment in Python?", "What's the command to make a Python virtual environment?", "How can I set up a virtual environment for Python?"],
    ["Why is the sky blue?", "What makes the sky look blue?", "Explain why the sky appears blue."],
    ["What is the Pythagorean theorem?", "Can you explain the Pythagorean theorem?", "State the Pythagorean theorem."],
    ["How do I write a cover letter?", "What's the best way to write a cover letter?", "Give me advice on writing a cover letter."],
    ["What is inflation in economics?", "Explain inflation in economic terms.", "In economics, what does inflation mean?"],
    ["How do I remove a file with git?", "What's the git command to remove a file?", "How can I delete a file using git?"],
    ["What is the tallest mountain in the world?", "Which mountain is the tallest on Earth?", "Name the world's tallest mountain."],
    ["Tell me a joke about cats.", "Can you tell me a cat joke?", "I'd like to hear a joke about cats."],
    ["How do I cook rice on the stove?", "What's the way to cook rice on a stovetop?", "How can I make rice on the stove?"],
    ["What does HTTP stand for?", "What is HTTP short for?", "HTTP stands for what?"],
    ["What is the greenhouse effect?", "Explain the greenhouse effect.", "Can you describe what the greenhouse effect is?"],
    ["How do I sort a dictionary by value in Python?", "What's the way to sort a Python dict by its values?", "Sort a dictionary by value in Python: how?"],
    ["Who painted the Mona Lisa?", "Who is the painter of the Mona Lisa?", "The Mona Lisa was painted by whom?"],
    ["What is a prime number?", "Define a prime number.", "Can you explain what prime numbers are?"],
    ["How do I improve my public speaking?", "What are ways to get better at public speaking?", "Give me advice to improve public speaking skills."],
    ["What is the function of the heart?", "What does the heart do in the body?", "Explain the heart's function."],
    ["Write a short poem about the sea.", "Compose a short poem about the sea.", "Can you write a brief poem on the sea?"],
    ["How do I check disk usage in Linux?", "What's the command to see disk usage on Linux?", "How can I find out disk usage in Linux?"],
    ["What is the meaning of the word ephemeral?", "What does ephemeral mean?", "Define the word ephemeral."],
    ["How does compound interest work?", "Explain how compound interest works.", "What is compound interest and how does it work?"],
    ["What is the largest ocean on Earth?", "Which ocean is the biggest on Earth?", "Name the largest ocean in the world."],
    ["How do I make my code more readable?", "What are ways to write more readable code?", "Give me tips for making code easier to read."],
    ["What is DNA made of?", "What are the components of DNA?", "What makes up DNA?"],
    ["How do I stop procrastinating?", "What can I do to stop procrastinating?", "Give me ways to overcome procrastination."],
    ["Explain recursion to a beginner.", "Can you explain recursion for beginners?", "How would you describe recursion to someone new to programming?"],
    ["What is the population of Tokyo?", "How many people live in Tokyo?", "What's Tokyo's population?"],
    ["How do plants absorb water?", "In what way do plants take up water?", "Explain how plants absorb water."],
    ["What is a REST API?", "Can you explain what a REST API is?", "Describe a REST API."],
    ["How do I bake chocolate chip cookies?", "Give me a recipe for chocolate chip cookies.", "What's the way to bake chocolate chip cookies?"],
    ["What year did World War II end?", "When did World War II end?", "In which year did the Second World War end?"],
    ["How do I learn to play the guitar?", "What's the best way to learn guitar?", "Give me advice on learning to play guitar."],
    ["What is the difference between weather and climate?", "How is weather different from climate?", "Explain weather versus climate."],
    ["How do I convert a string to an integer in JavaScript?", "What's the way to turn a string into an integer in JavaScript?", "In JavaScript, how can I convert a string to an integer?"],
    ["What are the main causes of stress?", "What usually causes stress?", "Name the main causes of stress."],
]

NEAR_MISSES = []


def near(kind, a, b):
    NEAR_MISSES.append({"a": a, "b": b, "label": "near_miss", "kind": kind})


COUNTRIES = ["France", "Spain", "Germany", "Italy", "Japan", "Brazil", "Canada", "Egypt", "India", "Kenya", "Portugal", "Mexico"]
for template in ["What is the capital of {}?", "What is the population of {}?", "what language do people speak in {}",
                 "Tell me about the history of {}.", "What is the currency of {}?"]:
    for x, y in zip(COUNTRIES[0::2], COUNTRIES[1::2]):
        near("country", template.format(x), template.format(y))
CITIES = [("Paris", "London"), ("Tokyo", "Seoul"), ("Berlin", "Vienna"), ("Chicago", "Boston"), ("Sydney", "Toronto"),
          ("Madrid", "Lisbon")]
for template in ["What's the weather usually like in {} in July?", "How far is the airport from the center of {}?",
                 "what are the best museums in {}"]:
    for x, y in CITIES:
        near("city", template.format(x), template.format(y))

LANGS = [("Python", "Rust"), ("Java", "Go"), ("JavaScript", "TypeScript"), ("C++", "C#"), ("Ruby", "PHP"),
         ("Kotlin", "Swift")]
for template in ["How do I reverse a string in {}?", "Write a {} function that checks if a number is prime.",
                 "how do i read a file line by line in {}", "What is the best way to handle errors in {}?",
                 "Show me how to make an HTTP request in {}."]:
    for x, y in LANGS:
        near("language", template.format(x), template.format(y))

NUMBERS = [("17 times 23", "17 times 24"), ("144 divided by 12", "144 divided by 16"), ("the square root of 81", "the square root of 64"),
           ("15% of 200", "15% of 300"), ("2 to the power of 10", "2 to the power of 12")]
for x, y in NUMBERS:
    near("number", f"What is {x}?", f"What is {y}?")
    near("number", f"Calculate {x} for me.", f"Calculate {y} for me.")
for x, y in [(5, 8), (10, 12), (100, 150), (3, 30), (1.5, 2.5)]:
    near("number", f"Convert {x} miles to kilometers.", f"Convert {y} miles to kilometers.")
    near("number", f"What is {x} kg in pounds?", f"What is {y} kg in pounds?")
for x, y in [("three", "five"), ("two", "ten"), ("four", "seven")]:
    near("number", f"Give me {x} tips for a job interview.", f"Give me {y} tips for a job interview.")
    near("number", f"Write a poem with {x} stanzas about rain.", f"Write a poem with {y} stanzas about rain.")
for x, y in [(1990, 1995), (1066, 1067), (2008, 2012)]:
    near("number", f"What happened in the year {x}?", f"What happened in the year {y}?")

POLAR = [
    ("How do I enable two-factor authentication?", "How do I disable two-factor authentication?"),
    ("How do I turn on dark mode in Windows?", "How do I turn off dark mode in Windows?"),
    ("How do I install Docker on Ubuntu?", "How do I uninstall Docker on Ubuntu?"),
    ("Is coffee good for your health?", "Is coffee bad for your health?"),
    ("Why is my code compiling?", "Why isn't my code compiling?"),
    ("What foods should I eat before running?", "What foods should I eat after running?"),
    ("How do I encrypt a file with gpg?", "How do I decrypt a file with gpg?"),
    ("How can I increase my credit score?", "How can I decrease my credit score?"),
    ("Sort this list in ascending order.", "Sort this list in descending order.", ),
    ("What are the advantages of remote work?", "What are the disadvantages of remote work?"),
    ("How do I allow a port through the firewall?", "How do I block a port through the firewall?"),
    ("Should I take the job offer?", "Should I not take the job offer?"),
    ("How do I add a user to a group in Linux?", "How do I remove a user from a group in Linux?"),
    ("What is the largest planet in the solar system?", "What is the smallest planet in the solar system?"),
    ("How do I lock my screen on a Mac?", "How do I unlock my screen on a Mac?"),
    ("How do I upload files to Google Drive?", "How do I download files from Google Drive?"),
    ("What is the fastest sorting algorithm?", "What is the slowest sorting algorithm?"),
    ("How do I compress a folder?", "How do I decompress a folder?"),
    ("Can dogs eat grapes?", "Can dogs not eat grapes?"),
    ("How do I start a service with systemctl?", "How do I stop a service with systemctl?"),
    ("List the pros of nuclear energy.", "List the cons of nuclear energy."),
    ("How do I convert Celsius to Fahrenheit?", "How do I convert Fahrenheit to Celsius?"),
    ("Write a function that returns the maximum of a list.", "Write a function that returns the minimum of a list."),
    ("How do I push changes to a remote branch?", "How do I pull changes from a remote branch?"),
    ("What is the highest mountain in Africa?", "What is the lowest point in Africa?"),
    ("Is it safe to swim after eating?", "Is it unsafe to swim after eating?"),
    ("How do I show hidden files in Finder?", "How do I hide hidden files in Finder?"),
    ("How do I import a CSV into Excel?", "How do I export a CSV from Excel?"),
    ("What is the first step in CPR?", "What is the last step in CPR?"),
    ("How do I connect to a VPN?", "How do I disconnect from a VPN?"),
    ("Write a story with a happy ending.", "Write a story without a happy ending."),
    ("Which foods contain gluten?", "Which foods don't contain gluten?"),
    ("How do I make text uppercase in Python?", "How do I make text lowercase in Python?"),
    ("Why do people like horror movies?", "Why do people dislike horror movies?"),
    ("Should I buy stocks during a recession?", "Should I sell stocks during a recession?"),
    ("How do I follow someone on Twitter?", "How do I unfollow someone on Twitter?"),
    ("Is it legal to record phone calls?", "Is it illegal to record phone calls?"),
    ("How do I mute a channel in Slack?", "How do I unmute a channel in Slack?"),
    ("What is the longest river in Europe?", "What is the shortest river in Europe?"),
    ("Explain why vaccines are safe.", "Explain why vaccines are not safe."),
]
for a, b in POLAR:
    near("negation", a, b)

PEOPLE = [("Marie Curie", "Pierre Curie"), ("Isaac Newton", "Albert Einstein"), ("Serena Williams", "Venus Williams"),
          ("Barack Obama", "Michelle Obama"), ("Charles Darwin", "Gregor Mendel"), ("Ada Lovelace", "Alan Turing")]
for template in ["Who was {}?", "What is {} best known for?"]:
    for x, y in PEOPLE:
        near("person", template.format(x), template.format(y))

UNITS = [("Convert 5 miles to kilometers.", "Convert 5 kilometers to miles."),
         ("What is 30 degrees Celsius in Fahrenheit?", "What is 30 degrees Fahrenheit in Celsius?"),
         ("How many feet are in 10 meters?", "How many meters are in 10 feet?"),
         ("What is 70 kg in pounds?", "What is 70 pounds in kg?")]
for a, b in UNITS:
    near("unit", a, b)

OPERATIONS = [("What is 17 × 23?", "What is 17 + 23?"), ("What is 2^10?", "What is 2*10?"),
              ("Is 7 > 3?", "Is 7 < 3?"), ("What is 48 / 6?", "What is 48 - 6?"),
              ("What is 17 times 23?", "What is 17 plus 23?"), ("What is 9 squared?", "What is the square root of 9?"),
              ("What is 100 minus 7?", "What is 100 divided by 7?"), ("Compute 15% of 80.", "Compute 15 / 80.")]
for a, b in OPERATIONS:
    near("operation", a, b)

ORDER = [("Is Python faster than Java?", "Is Java faster than Python?"),
         ("Translate this from English to French: good night", "Translate this from French to English: good night"),
         ("Convert this code from Python to Rust", "Convert this code from Rust to Python"),
         ("Is London bigger than Paris?", "Is Paris bigger than London?"),
         ("Why did Germany declare war on France in 1914?", "Why did France declare war on Germany in 1914?"),
         ("How do I migrate from MySQL to Postgres?", "How do I migrate from Postgres to MySQL?")]
for a, b in ORDER:
    near("order", a, b)


def main():
    rows = []
    for group in PARAPHRASES:
        for a, b in itertools.combinations(group, 2):
            rows.append({"a": a, "b": b, "label": "paraphrase", "kind": "paraphrase"})
    rows += NEAR_MISSES
    for row in rows:
        print(json.dumps(row, ensure_ascii=False))


if __name__ == "__main__":
    main()
