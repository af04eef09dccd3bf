//! The prompt categories the router scores models for.

/// What a prompt is mostly about; profiles and feedback are kept per category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    Coding,
    Reasoning,
    Creativity,
    Factual,
}

impl Category {
    pub const ALL: [Category; 4] = [
        Category::Coding,
        Category::Reasoning,
        Category::Creativity,
        Category::Factual,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Coding => "coding",
            Category::Reasoning => "reasoning",
            Category::Creativity => "creativity",
            Category::Factual => "factual",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn parse(name: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.as_str() == name)
    }
}
