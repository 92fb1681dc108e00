//! Movie-review sentiment data, generated deterministically from a seed, whose labels depend on
//! word order: a clause's adjective is flipped by a negation before it ("not good", "never
//! boring", "not bad at all"), and in a contrast the main clause decides: the one after "but"
//! ("good but boring" is negative, "boring but the ending was great" positive), the one
//! before "though" ("great though slow" is positive). So neither the words nor their
//! position alone (the last clause, say) gives the label.
//!
//! The two clauses of a contrast always have opposite polarities, and the generator draws
//! each side from the same distribution, so a contrast and its mirror (the clauses swapped)
//! are equally likely, hold the same words and carry opposite labels: no function of the word
//! multiset (a bag of words, however it is weighted) can beat a coin on them. With contrasts
//! [`CONTRAST_SHARE`] of the data, a bag of words scores at most `1 − CONTRAST_SHARE / 2`
//! (0.675) on average; the tests check the mirror property and the bound.

use wgrnn::core::SplitMix64;

/// What a clause is about; `None` in a clause is the bare form ("not bad at all").
pub const SUBJECTS: [&str; 10] = [
    "the plot",
    "the acting",
    "the ending",
    "the music",
    "the story",
    "the dialogue",
    "the cast",
    "the script",
    "the film",
    "it",
];
pub const VERBS: [&str; 2] = ["was", "is"];
pub const NEGATIONS: [&str; 2] = ["not", "never"];
pub const INTENSIFIERS: [&str; 5] = ["very", "really", "quite", "so", "truly"];
pub const POSITIVE: [&str; 10] = [
    "good",
    "great",
    "brilliant",
    "fun",
    "moving",
    "clever",
    "wonderful",
    "beautiful",
    "gripping",
    "superb",
];
pub const NEGATIVE: [&str; 10] = [
    "bad",
    "boring",
    "dull",
    "awful",
    "weak",
    "terrible",
    "slow",
    "bland",
    "predictable",
    "lifeless",
];
/// Openers that carry no sentiment.
pub const OPENERS: [&str; 3] = ["honestly", "overall", "frankly"];

/// Share of reviews that are a contrast, "A but B" or "A though B" (the rest: one clause, or
/// two of the same polarity joined by "and").
pub const CONTRAST_SHARE: f64 = 0.65;
/// Share of the contrasts that use "though" (the first clause deciding) rather than "but".
pub const THOUGH_SHARE: f64 = 0.4;
/// Share of reviews that are two clauses joined by "and".
pub const AND_SHARE: f64 = 0.10;

/// One clause: `[subject verb] [negation] [intensifier] adjective ["at all"]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Clause {
    pub subject: Option<(&'static str, &'static str)>,
    pub negation: Option<&'static str>,
    pub intensifier: Option<&'static str>,
    pub adjective: &'static str,
    /// "at all" after a negated adjective without an intensifier ("not bad at all").
    pub at_all: bool,
}

impl Clause {
    /// Whether the clause is positive: the adjective's polarity, flipped by a negation.
    pub fn positive(&self) -> bool {
        POSITIVE.contains(&self.adjective) != self.negation.is_some()
    }

    pub fn words(&self) -> Vec<&'static str> {
        let mut w = Vec::with_capacity(8);
        if let Some((s, v)) = self.subject {
            w.extend(s.split(' '));
            w.push(v);
        }
        w.extend(self.negation);
        w.extend(self.intensifier);
        w.push(self.adjective);
        if self.at_all {
            w.extend(["at", "all"]);
        }
        w
    }
}

/// A review's structure: one clause, two of one polarity ("and"), or a contrast of two of
/// opposite polarities ("but": the second decides; "though": the first does).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Review {
    Single(Clause),
    And(Clause, Clause),
    But(Clause, Clause),
    Though(Clause, Clause),
}

impl Review {
    /// The label the structure gives, without reading the text.
    pub fn positive(&self) -> bool {
        match self {
            Review::Single(c) | Review::And(c, _) | Review::But(_, c) | Review::Though(c, _) => {
                c.positive()
            }
        }
    }

    /// The same clauses in the other order, under the same connective (a single clause is
    /// its own mirror).
    pub fn mirror(&self) -> Review {
        match self.clone() {
            Review::Single(c) => Review::Single(c),
            Review::And(a, b) => Review::And(b, a),
            Review::But(a, b) => Review::But(b, a),
            Review::Though(a, b) => Review::Though(b, a),
        }
    }

    pub fn words(&self) -> Vec<&'static str> {
        match self {
            Review::Single(c) => c.words(),
            Review::And(a, b) | Review::But(a, b) | Review::Though(a, b) => {
                let mut w = a.words();
                w.push(match self {
                    Review::And(..) => "and",
                    Review::But(..) => "but",
                    _ => "though",
                });
                w.extend(b.words());
                w
            }
        }
    }
}

fn pick<T: Copy>(rng: &mut SplitMix64, from: &[T]) -> T {
    from[rng.below(from.len())]
}

/// A clause of the given polarity: the adjective and the negation are drawn together so that
/// each polarity is negated or not with the same odds.
pub fn clause(rng: &mut SplitMix64, positive: bool) -> Clause {
    let negated = rng.next_f64() < 0.4;
    let adjective = match positive != negated {
        true => pick(rng, &POSITIVE),
        false => pick(rng, &NEGATIVE),
    };
    let subject = (rng.next_f64() < 0.7).then(|| (pick(rng, &SUBJECTS), pick(rng, &VERBS)));
    let negation = negated.then(|| pick(rng, &NEGATIONS));
    let intensifier = (rng.next_f64() < 0.3).then(|| pick(rng, &INTENSIFIERS));
    let at_all = negated && intensifier.is_none() && rng.next_f64() < 0.4;
    Clause {
        subject,
        negation,
        intensifier,
        adjective,
        at_all,
    }
}

/// A review with the given label.
pub fn review(rng: &mut SplitMix64, positive: bool) -> Review {
    let u = rng.next_f64();
    if u < CONTRAST_SHARE {
        // Drawn in reading order from one clause distribution per polarity: the mirror
        // `But(b, a)` of `But(a, b)` is exactly as likely under the other label.
        if rng.next_f64() < THOUGH_SHARE {
            let first = clause(rng, positive);
            Review::Though(first, clause(rng, !positive))
        } else {
            let first = clause(rng, !positive);
            Review::But(first, clause(rng, positive))
        }
    } else if u < CONTRAST_SHARE + AND_SHARE {
        let first = clause(rng, positive);
        Review::And(first, clause(rng, positive))
    } else {
        Review::Single(clause(rng, positive))
    }
}

/// One example: the review's text (words separated by single spaces) and its label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Example {
    pub text: String,
    pub positive: bool,
}

/// The text of a review, with an opener ("honestly …") one time in ten.
fn render(rng: &mut SplitMix64, r: &Review) -> String {
    let mut words = Vec::new();
    if rng.next_f64() < 0.1 {
        words.push(pick(rng, &OPENERS));
    }
    words.extend(r.words());
    words.join(" ")
}

/// Whether a text is held out: one text in ten, by a hash of the words, so that a review
/// drawn twice lands on one side only and no held-out text is ever trained on.
pub fn held_out(text: &str) -> bool {
    // FNV-1a, written out: std's hashers may change between Rust releases, and the split
    // must not.
    let h = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    });
    SplitMix64::new(h ^ 0x5e47).next_u64().is_multiple_of(10)
}

/// `n` examples from `seed` with balanced labels, split into (train, held-out) by text.
pub fn generate(n: usize, seed: u64) -> (Vec<Example>, Vec<Example>) {
    let mut rng = SplitMix64::new(seed);
    let (mut train, mut held) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let positive = rng.next_u64() & 1 == 1;
        let r = review(&mut rng, positive);
        let ex = Example {
            text: render(&mut rng, &r),
            positive: r.positive(),
        };
        if held_out(&ex.text) {
            held.push(ex)
        } else {
            train.push(ex)
        }
    }
    (train, held)
}

/// The rule the labels follow, read from the text alone (an independent check of the
/// generator): the part after "but" or before "though" decides; in it each clause ("and"
/// separates them) is its adjective's polarity, flipped by a negation. `None` when a clause
/// has no adjective or more than one, when clauses joined by "and" disagree, when the text
/// holds more than one contrast word, or for an empty text.
pub fn sentiment(text: &str) -> Option<bool> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let contrast = |w: &str| w == "but" || w == "though";
    let deciding = match words.iter().filter(|w| contrast(w)).count() {
        0 => &words[..],
        1 => {
            let at = words.iter().position(|w| contrast(w))?;
            match words[at] {
                "but" => &words[at + 1..],
                _ => &words[..at],
            }
        }
        _ => return None,
    };
    let mut verdict = None;
    for part in deciding.split(|w| *w == "and") {
        let polar: Vec<bool> = part
            .iter()
            .filter_map(|w| match (POSITIVE.contains(w), NEGATIVE.contains(w)) {
                (true, _) => Some(true),
                (_, true) => Some(false),
                _ => None,
            })
            .collect();
        let [adjective] = polar[..] else {
            return None;
        };
        let negated = part.iter().any(|w| NEGATIONS.contains(w));
        let p = adjective != negated;
        if verdict.is_some_and(|v| v != p) {
            return None;
        }
        verdict = Some(p);
    }
    verdict
}

/// The words of the vocabulary, in id order after the padding id 0 and the unknown id 1.
pub fn vocabulary() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = Vec::new();
    for s in SUBJECTS {
        for w in s.split(' ') {
            if !v.contains(&w) {
                v.push(w);
            }
        }
    }
    v.extend(VERBS);
    v.extend(NEGATIONS);
    v.extend(INTENSIFIERS);
    v.extend(POSITIVE);
    v.extend(NEGATIVE);
    v.extend(OPENERS);
    v.extend(["at", "all", "and", "but", "though"]);
    v
}

pub const PAD: i64 = 0;
pub const UNKNOWN: i64 = 1;

pub fn vocab_size() -> usize {
    vocabulary().len() + 2
}

/// Word ids of a text; a word outside the vocabulary is [`UNKNOWN`].
pub fn encode(text: &str) -> Vec<i64> {
    let vocab = vocabulary();
    text.split_whitespace()
        .map(|w| {
            vocab
                .iter()
                .position(|v| *v == w)
                .map_or(UNKNOWN, |p| p as i64 + 2)
        })
        .collect()
}

/// The best accuracy any function of the word multiset can expect on `examples`: each
/// contrast among them has an equally likely mirror with the same words and the other label,
/// so at best half of them are right, and every other review is right.
pub fn bag_of_words_ceiling(examples: &[Example]) -> f64 {
    let contrasts = examples
        .iter()
        .filter(|e| {
            e.text
                .split_whitespace()
                .any(|w| w == "but" || w == "though")
        })
        .count();
    1.0 - contrasts as f64 / (2.0 * examples.len().max(1) as f64)
}
