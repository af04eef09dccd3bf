//! User feedback folded into scoring: per model (and per model and category), an exponentially
//! decayed sum of scores and of weights. The value used is `sum / (weight + PRIOR)`, so a model
//! with little or old feedback stays near 0, and feedback fades with a half-life.

use std::collections::HashMap;
use std::sync::RwLock;

use super::analysis::Category;

/// Pseudo-observations at 0: three agreeing votes are needed to move a model half way.
const PRIOR: f64 = 3.0;

#[derive(Debug, Default, Clone, Copy)]
struct Decayed {
    sum: f64,
    weight: f64,
    at_ms: u64,
}

impl Decayed {
    fn decayed_to(self, now_ms: u64, half_life_ms: f64) -> Decayed {
        let dt = now_ms.saturating_sub(self.at_ms) as f64;
        let factor = 0.5f64.powf(dt / half_life_ms);
        Decayed {
            sum: self.sum * factor,
            weight: self.weight * factor,
            at_ms: now_ms.max(self.at_ms),
        }
    }
}

/// Decayed feedback per model and per (model, category).
#[derive(Debug)]
pub struct FeedbackIndex {
    half_life_ms: f64,
    entries: RwLock<HashMap<(String, Option<Category>), Decayed>>,
}

impl FeedbackIndex {
    pub fn new(half_life_days: f64) -> Self {
        FeedbackIndex {
            half_life_ms: (half_life_days.max(0.001)) * 86_400_000.0,
            entries: RwLock::new(HashMap::new()),
        }
    }

    /// Adds one score in −1..1 given at `unix_ms`.
    pub fn add(&self, model: &str, category: Option<Category>, score: f32, unix_ms: u64) {
        let Ok(mut entries) = self.entries.write() else {
            return;
        };
        let mut keys = vec![(model.to_string(), None)];
        if category.is_some() {
            keys.push((model.to_string(), category));
        }
        for key in keys {
            let entry = entries.entry(key).or_default();
            let mut d = entry.decayed_to(unix_ms, self.half_life_ms);
            if d.at_ms == 0 {
                d.at_ms = unix_ms;
            }
            // Feedback older than the entry counts decayed by its age.
            let age_factor =
                0.5f64.powf(d.at_ms.saturating_sub(unix_ms) as f64 / self.half_life_ms);
            d.sum += f64::from(score.clamp(-1.0, 1.0)) * age_factor;
            d.weight += age_factor;
            *entry = d;
        }
    }

    /// The model's feedback value in −1..1 for a category at `now_ms` (category-specific
    /// feedback counts double).
    pub fn value(&self, model: &str, category: Category, now_ms: u64) -> f32 {
        let Ok(entries) = self.entries.read() else {
            return 0.0;
        };
        let get = |c: Option<Category>| {
            entries
                .get(&(model.to_string(), c))
                .map(|d| d.decayed_to(now_ms, self.half_life_ms))
                .unwrap_or_default()
        };
        let all = get(None);
        let cat = get(Some(category));
        let sum = all.sum + cat.sum;
        let weight = all.weight + cat.weight;
        (sum / (weight + PRIOR)).clamp(-1.0, 1.0) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 86_400_000;

    #[test]
    fn feedback_moves_a_model_and_fades() {
        let index = FeedbackIndex::new(7.0);
        assert_eq!(index.value("m", Category::Coding, DAY), 0.0);
        for _ in 0..5 {
            index.add("m", Some(Category::Coding), 1.0, DAY);
        }
        let fresh = index.value("m", Category::Coding, DAY);
        assert!(fresh > 0.7, "{fresh}");
        let other = index.value("m", Category::Creativity, DAY);
        assert!(
            other > 0.0 && other < fresh,
            "category-specific counts more: {other}"
        );
        let later = index.value("m", Category::Coding, DAY * 29);
        assert!(later < fresh / 2.0, "a month later it has faded: {later}");
        index.add("m", None, -1.0, DAY * 29);
        assert!(index.value("m", Category::Coding, DAY * 29) < later);
    }
}
