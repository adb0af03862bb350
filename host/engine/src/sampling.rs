//! Choosing the next token: greedy, or temperature with top-k, top-p and a
//! repetition penalty, from a seeded generator so the same seed and settings
//! give the same text.

use rand::{Rng, SeedableRng, rngs::StdRng};
use serde::{Deserialize, Serialize};

/// Sampling settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SamplingParams {
    /// 0 means greedy.
    pub temperature: f32,
    /// Nucleus sampling; 1.0 disables it.
    pub top_p: f32,
    /// Keep the k most likely tokens; 0 disables it.
    pub top_k: usize,
    /// Penalty (> 1 discourages) on tokens already in the prompt or output.
    pub repetition_penalty: f32,
    /// Maximum new tokens.
    pub max_tokens: usize,
    /// Seed of the generator.
    pub seed: u64,
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams {
            temperature: 0.3,
            top_p: 1.0,
            top_k: 0,
            repetition_penalty: 1.0,
            max_tokens: 256,
            seed: 0,
        }
    }
}

/// One sequence's sampler.
pub struct Sampler {
    params: SamplingParams,
    rng: StdRng,
}

impl Sampler {
    /// A sampler for the sequence named `key`: its generator is seeded from
    /// the seed and the key, so a sequence's text does not depend on which
    /// other sequences share its batch.
    pub fn new(params: SamplingParams, key: &str) -> Self {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ params.seed;
        for b in key.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        Sampler {
            rng: StdRng::seed_from_u64(h),
            params,
        }
    }

    /// The settings.
    pub fn params(&self) -> &SamplingParams {
        &self.params
    }

    /// Picks the next token from `logits`, given the tokens seen so far.
    pub fn sample(&mut self, logits: &mut [f32], seen: &[u32]) -> u32 {
        let p = &self.params;
        if p.repetition_penalty != 1.0 {
            for &t in seen {
                if let Some(l) = logits.get_mut(t as usize) {
                    *l = if *l > 0.0 {
                        *l / p.repetition_penalty
                    } else {
                        *l * p.repetition_penalty
                    };
                }
            }
        }
        if p.temperature <= 0.0 {
            return argmax(logits);
        }
        let mut candidates: Vec<(u32, f32)> = logits
            .iter()
            .enumerate()
            .map(|(i, &l)| (i as u32, l / p.temperature))
            .collect();
        let keep = if p.top_k > 0 {
            p.top_k.min(candidates.len())
        } else {
            candidates.len()
        };
        if keep < candidates.len() {
            candidates.select_nth_unstable_by(keep - 1, |a, b| b.1.total_cmp(&a.1));
            candidates.truncate(keep);
        }
        candidates.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let max = candidates[0].1;
        let mut probs: Vec<f32> = candidates.iter().map(|c| (c.1 - max).exp()).collect();
        let total: f32 = probs.iter().sum();
        probs.iter_mut().for_each(|x| *x /= total);
        if p.top_p < 1.0 {
            let mut cumulative = 0.0;
            let cut = probs
                .iter()
                .position(|&x| {
                    cumulative += x;
                    cumulative >= p.top_p
                })
                .map_or(probs.len(), |i| i + 1);
            probs.truncate(cut);
            let total: f32 = probs.iter().sum();
            probs.iter_mut().for_each(|x| *x /= total);
        }
        let mut r: f32 = self.rng.random();
        for (i, &x) in probs.iter().enumerate() {
            if r < x {
                return candidates[i].0;
            }
            r -= x;
        }
        candidates[probs.len() - 1].0
    }
}

/// Index of the largest value (the first, on ties).
pub fn argmax(values: &[f32]) -> u32 {
    let mut best = 0;
    for (i, v) in values.iter().enumerate() {
        if *v > values[best] {
            best = i;
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(temperature: f32) -> SamplingParams {
        SamplingParams {
            temperature,
            ..SamplingParams::default()
        }
    }

    #[test]
    fn greedy_takes_the_largest() {
        let mut s = Sampler::new(params(0.0), "a");
        assert_eq!(s.sample(&mut [0.1, 3.0, 2.0], &[]), 1);
    }

    #[test]
    fn same_seed_and_key_same_choices() {
        let logits = vec![1.0f32, 1.1, 0.9, 1.05, 0.95];
        let run = |key| {
            let mut s = Sampler::new(params(1.0), key);
            (0..50)
                .map(|_| s.sample(&mut logits.clone(), &[]))
                .collect::<Vec<_>>()
        };
        assert_eq!(run("x"), run("x"));
        assert_ne!(run("x"), run("y"));
    }

    #[test]
    fn top_k_one_is_greedy_and_penalty_applies() {
        let mut s = Sampler::new(
            SamplingParams {
                temperature: 1.0,
                top_k: 1,
                ..SamplingParams::default()
            },
            "k",
        );
        assert_eq!(s.sample(&mut [0.0, 5.0, 4.0], &[]), 1);
        let mut s = Sampler::new(
            SamplingParams {
                temperature: 0.0,
                repetition_penalty: 2.0,
                ..SamplingParams::default()
            },
            "k",
        );
        assert_eq!(s.sample(&mut [0.0, 5.0, 4.0], &[1]), 2);
    }
}
