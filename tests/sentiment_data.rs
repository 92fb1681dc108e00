//! The review data of the sentiment example: labels follow the negation and contrast rules on
//! hand-written reviews, the generator's labels agree with the rule read from the text, and
//! the data needs word order: reviews with the same words carry opposite labels, so a bag of
//! words stays near the bound the data module states, and so does the last clause alone.

#[path = "../examples/sentiment/data.rs"]
#[allow(dead_code)]
pub mod data;

use std::collections::HashMap;

use data::*;
use wgrnn::core::SplitMix64;

#[test]
fn hand_written_reviews_get_the_rules_labels() {
    // (review, label) written by hand from the rules: a negation flips its clause, "but"
    // hands the verdict to the clause after it, "though" keeps it with the clause before.
    let cases: &[(&str, Option<bool>)] = &[
        ("good", Some(true)),
        ("not good", Some(false)),
        ("boring", Some(false)),
        ("never boring", Some(true)),
        ("not bad at all", Some(true)),
        ("the plot was not very good", Some(false)),
        ("good but boring", Some(false)),
        ("boring but the ending was great", Some(true)),
        ("the acting was fun but never so brilliant", Some(false)),
        (
            "the plot was not very good but the acting was not bad at all",
            Some(true),
        ),
        ("great though slow", Some(true)),
        ("slow though great", Some(false)),
        (
            "the music is superb though the film is not good",
            Some(true),
        ),
        ("it was not dull though the cast was never good", Some(true)),
        ("the plot was good and the cast was great", Some(true)),
        ("honestly not awful and not boring at all", Some(true)),
        // Outside the grammar: no verdict rather than a guess.
        ("good and boring", None),
        ("good bad", None),
        ("the plot", None),
        ("", None),
        ("good but bad though fun", None),
    ];
    for &(text, want) in cases {
        assert_eq!(sentiment(text), want, "{text:?}");
    }
}

#[test]
fn a_review_built_by_hand_renders_and_labels_as_written() {
    let clause = |subject, negation, adjective, at_all| Clause {
        subject,
        negation,
        intensifier: None,
        adjective,
        at_all,
    };
    let not_bad = clause(None, Some("not"), "bad", true);
    let boring = clause(Some(("the film", "was")), None, "boring", false);
    let cases = [
        (
            Review::But(not_bad.clone(), boring.clone()),
            "not bad at all but the film was boring",
            false,
        ),
        (
            Review::But(boring.clone(), not_bad.clone()),
            "the film was boring but not bad at all",
            true,
        ),
        (
            Review::Though(not_bad.clone(), boring.clone()),
            "not bad at all though the film was boring",
            true,
        ),
        (
            Review::Single(clause(Some(("it", "is")), Some("never"), "fun", false)),
            "it is never fun",
            false,
        ),
    ];
    for (review, text, positive) in cases {
        assert_eq!(review.words().join(" "), text);
        assert_eq!(review.positive(), positive, "{text}");
        assert_eq!(sentiment(text), Some(positive), "{text}");
    }
}

#[test]
fn generated_labels_follow_the_rule_read_from_the_text() {
    let (train, held) = generate(6000, 3);
    for e in train.iter().chain(&held) {
        assert_eq!(sentiment(&e.text), Some(e.positive), "{:?}", e.text);
        assert!(
            encode(&e.text).iter().all(|&i| i != UNKNOWN && i != PAD),
            "{:?} has words outside the vocabulary",
            e.text
        );
    }
    // Balanced labels: 6,000 fair coins stay within 4σ (±155) of 3,000.
    let positive = train.iter().chain(&held).filter(|e| e.positive).count();
    assert!(positive.abs_diff(3000) < 155, "{positive} positive of 6000");
}

#[test]
fn generation_is_deterministic_and_split_by_text() {
    let (train, held) = generate(4000, 7);
    assert_eq!((train.clone(), held.clone()), generate(4000, 7));
    assert_ne!(train, generate(4000, 8).0);
    assert_eq!(train.len() + held.len(), 4000);
    // One text in ten: 400 ± 4σ (76).
    assert!(held.len().abs_diff(400) < 76, "{} held out", held.len());
    let trained: std::collections::HashSet<_> = train.iter().map(|e| &e.text).collect();
    assert!(
        held.iter().all(|e| !trained.contains(&e.text)),
        "a held-out review was trained on"
    );
}

fn multiset(text: &str) -> Vec<&str> {
    let mut w: Vec<&str> = text.split_whitespace().collect();
    w.sort_unstable();
    w
}

/// Every contrast's mirror holds the same words and the other label, and is itself a review
/// the generator makes (its clauses have opposite polarities under the same connective); a
/// drawn sample holds such pairs verbatim.
#[test]
fn reviews_with_the_same_words_get_opposite_labels() {
    let mut rng = SplitMix64::new(11);
    let (mut contrasts, mut but_positive_second) = (0usize, 0usize);
    for _ in 0..4000 {
        let positive = rng.next_u64() & 1 == 1;
        let r = review(&mut rng, positive);
        let (Review::But(a, b) | Review::Though(a, b)) = &r else {
            continue;
        };
        contrasts += 1;
        assert_ne!(a.positive(), b.positive(), "{:?}", r.words());
        but_positive_second += (matches!(r, Review::But(..)) && b.positive()) as usize;
        let m = r.mirror();
        let (text, mirrored) = (r.words().join(" "), m.words().join(" "));
        assert_eq!(multiset(&text), multiset(&mirrored));
        assert_ne!(r.positive(), m.positive(), "{text} / {mirrored}");
        assert_eq!(sentiment(&mirrored), Some(m.positive()), "{mirrored}");
    }
    // 65 % of 4,000 draws within 4σ (±121).
    assert!(contrasts.abs_diff(2600) < 121, "{contrasts} contrasts");
    // "but" is 60 % of them, its second clause positive half the time.
    let buts = 0.6 * contrasts as f64;
    assert!(
        (but_positive_second as f64 - buts / 2.0).abs() < 4.0 * (buts / 4.0).sqrt(),
        "{but_positive_second} of about {buts} contrasts end positive"
    );

    // In a generated data set itself: groups of reviews with one word multiset and both
    // labels, e.g. "dull but not bland" and "not bland but dull".
    let (train, held) = generate(12_000, 1);
    let mut groups: HashMap<Vec<&str>, [usize; 2]> = HashMap::new();
    for e in train.iter().chain(&held) {
        groups.entry(multiset(&e.text)).or_default()[e.positive as usize] += 1;
    }
    let mixed = groups.values().filter(|g| g[0] > 0 && g[1] > 0).count();
    eprintln!("{mixed} word multisets occur with both labels in 12,000 reviews");
    assert!(mixed > 40, "only {mixed} mixed groups");
}

/// A bag of words stronger than a linear one: logistic regression on every word count and
/// every count of a pair of words (so it can learn that "not" with "bad" is positive),
/// trained by full-batch gradient descent. It learns much of what words can tell, but a
/// contrast's words are its mirror's: held out, it stays under the stated bound (about 0.68).
/// (On its training set it may pass the bound: a review whose mirror was not drawn can be
/// memorised.)
#[test]
fn a_bag_of_words_cannot_learn_the_labels() {
    let (train, held) = generate(6000, 5);
    let v = vocab_size();
    // Sparse features of a multiset: word w at index w, the pair {a ≤ b} at v + a·v + b.
    let features = |text: &str| {
        let ids: Vec<usize> = encode(text).iter().map(|&i| i as usize).collect();
        let mut f: HashMap<usize, f64> = HashMap::new();
        for (p, &a) in ids.iter().enumerate() {
            *f.entry(a).or_default() += 1.0;
            for &b in &ids[p + 1..] {
                *f.entry(v + a.min(b) * v + a.max(b)).or_default() += 1.0;
            }
        }
        f.into_iter().collect::<Vec<_>>()
    };
    let x: Vec<Vec<(usize, f64)>> = train.iter().map(|e| features(&e.text)).collect();
    let mut w = vec![0.0f64; v + v * v + 1];
    let bias = v + v * v;
    let score =
        |w: &[f64], f: &[(usize, f64)]| w[bias] + f.iter().map(|&(i, c)| w[i] * c).sum::<f64>();
    for _ in 0..1500 {
        let mut g = vec![0.0f64; w.len()];
        for (f, e) in x.iter().zip(&train) {
            let d = 1.0 / (1.0 + (-score(&w, f)).exp()) - e.positive as u8 as f64;
            g[bias] += d;
            for &(i, c) in f {
                g[i] += d * c;
            }
        }
        for (w, g) in w.iter_mut().zip(&g) {
            *w -= 2.0 * g / train.len() as f64;
        }
    }
    let accuracy = |set: &[Example]| {
        let right = set
            .iter()
            .filter(|e| (score(&w, &features(&e.text)) > 0.0) == e.positive)
            .count();
        right as f64 / set.len() as f64
    };
    let single = |e: &&Example| !e.text.contains(" but ") && !e.text.contains(" though ");
    let singles: Vec<Example> = held.iter().filter(single).cloned().collect();
    let (fit, test, easy) = (accuracy(&train), accuracy(&held), accuracy(&singles));
    let ceiling = bag_of_words_ceiling(&held);
    eprintln!(
        "bag of words: train {fit:.3}, held-out {test:.3} (without contrasts {easy:.3}), \
         bound {ceiling:.3}"
    );
    // The bound is an expectation over draws; ~600 held-out reviews move it by about 0.02 (1σ).
    assert!(
        (0.64..0.71).contains(&ceiling),
        "bound {ceiling}: the contrast share moved"
    );
    // It does learn from the words (0.81 on the reviews without a contrast, where pairs of
    // words decide; the contrasts' pairs, which no pair feature can tell from a single
    // clause's, pull it from 1), so its failure on the rest is the data's, not the fit's.
    assert!(
        easy > 0.75,
        "the baseline scored only {easy} on reviews without a contrast"
    );
    assert!(test < 0.70, "a bag of words scored {test} held out");
}

/// Position alone does not decide either: taking the last clause's polarity (right for
/// single clauses, "and" and "but") fails on every "though".
#[test]
fn the_last_clause_alone_cannot_learn_the_labels() {
    let (train, _) = generate(4000, 9);
    let right = train
        .iter()
        .filter(|e| {
            let last = e
                .text
                .rsplit([' '])
                .take_while(|w| !["but", "though", "and"].contains(w))
                .collect::<Vec<_>>();
            let mut clause: Vec<&str> = last.into_iter().rev().collect();
            clause.retain(|w| !OPENERS.contains(w));
            sentiment(&clause.join(" ")) == Some(e.positive)
        })
        .count();
    let acc = right as f64 / train.len() as f64;
    // Expected 1 − 0.65 · 0.4 = 0.74.
    assert!((0.70..0.78).contains(&acc), "the last clause scored {acc}");
}
