//! AdamW whose state can be saved and restored.
//!
//! Why it exists: `candle_nn::AdamW` keeps its moments and step count
//! private, so a run that stops cannot continue where it was. This one does
//! the same arithmetic, operation for operation, as candle-nn 0.11's AdamW
//! (decoupled weight decay, bias-corrected moments), so its updates are
//! bit-identical to candle's; [`AdamW::state`] and [`AdamW::set_state`]
//! export and restore the step count and the first and second moments.

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};

/// AdamW's hyper-parameters (PyTorch's defaults, as candle's).
#[derive(Debug, Clone, PartialEq)]
pub struct AdamWParams {
    /// Learning rate.
    pub lr: f64,
    /// Decay of the first moment.
    pub beta1: f64,
    /// Decay of the second moment.
    pub beta2: f64,
    /// Added to the second moment's square root.
    pub eps: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
}

impl Default for AdamWParams {
    fn default() -> Self {
        AdamWParams {
            lr: 0.001,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
        }
    }
}

/// One parameter and its moments.
#[derive(Debug)]
struct Slot {
    var: Var,
    m: Tensor,
    v: Tensor,
}

/// What [`AdamW`] carries from step to step: the number of steps taken and,
/// per variable (in the order given to [`AdamW::new`]), the first and second
/// moments.
#[derive(Debug, Clone)]
pub struct AdamWState {
    /// Steps taken.
    pub step: usize,
    /// First moments, one per variable.
    pub first_moments: Vec<Tensor>,
    /// Second moments, one per variable.
    pub second_moments: Vec<Tensor>,
}

/// AdamW over a fixed list of variables.
#[derive(Debug)]
pub struct AdamW {
    slots: Vec<Slot>,
    step: usize,
    params: AdamWParams,
}

impl AdamW {
    /// Starts with zero moments for `vars`. Variables that are not floating
    /// point are skipped (as candle does); [`AdamW::vars`] lists the kept ones.
    pub fn new(vars: Vec<Var>, params: AdamWParams) -> Result<Self> {
        let slots = vars
            .into_iter()
            .filter(|v| v.dtype().is_float())
            .map(|var| {
                let m = Tensor::zeros(var.shape(), var.dtype(), var.device())?;
                let v = m.clone();
                Ok(Slot { var, m, v })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(AdamW {
            slots,
            step: 0,
            params,
        })
    }

    /// The variables it updates, in order.
    pub fn vars(&self) -> Vec<Var> {
        self.slots.iter().map(|s| s.var.clone()).collect()
    }

    /// The learning rate.
    pub fn learning_rate(&self) -> f64 {
        self.params.lr
    }

    /// Changes the learning rate.
    pub fn set_learning_rate(&mut self, lr: f64) {
        self.params.lr = lr;
    }

    /// The hyper-parameters.
    pub fn params(&self) -> &AdamWParams {
        &self.params
    }

    /// Steps taken so far.
    pub fn step_count(&self) -> usize {
        self.step
    }

    /// One update from `grads`; variables without a gradient are left
    /// alone (their moments too), as in candle.
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.step += 1;
        let p = &self.params;
        let (lr, beta1, beta2) = (p.lr, p.beta1, p.beta2);
        let decay = 1f64 - lr * p.weight_decay;
        let t = self.step as i32;
        let scale_m = 1f64 / (1f64 - beta1.powi(t));
        let scale_v = 1f64 / (1f64 - beta2.powi(t));
        for slot in &mut self.slots {
            let Some(g) = grads.get(slot.var.as_tensor()) else {
                continue;
            };
            let m = ((&slot.m * beta1)? + (g * (1.0 - beta1))?)?;
            let v = ((&slot.v * beta2)? + (g.sqr()? * (1.0 - beta2))?)?;
            let m_hat = (&m * scale_m)?;
            let v_hat = (&v * scale_v)?;
            let decayed = (slot.var.as_tensor() * decay)?;
            let update = (m_hat / (v_hat.sqrt()? + p.eps)?)?;
            let theta = (decayed - (update * lr)?)?;
            slot.var.set(&theta)?;
            slot.m = m;
            slot.v = v;
        }
        Ok(())
    }

    /// A snapshot of the step count and the moments (detached copies that
    /// later steps do not change).
    pub fn state(&self) -> AdamWState {
        AdamWState {
            step: self.step,
            first_moments: self.slots.iter().map(|s| s.m.detach()).collect(),
            second_moments: self.slots.iter().map(|s| s.v.detach()).collect(),
        }
    }

    /// Continues from `state`: one pair of moments per variable, each with
    /// its variable's shape and dtype (moved to its device); otherwise an
    /// error and nothing is changed.
    pub fn set_state(&mut self, state: &AdamWState) -> Result<()> {
        let n = self.slots.len();
        if state.first_moments.len() != n || state.second_moments.len() != n {
            candle_core::bail!(
                "optimizer state for {} and {} variables, the optimizer has {n}",
                state.first_moments.len(),
                state.second_moments.len()
            );
        }
        let mut moments = Vec::with_capacity(n);
        for (i, slot) in self.slots.iter().enumerate() {
            let fit = |t: &Tensor| -> Result<Tensor> {
                if t.dims() != slot.var.dims() || t.dtype() != slot.var.dtype() {
                    candle_core::bail!(
                        "optimizer state: variable {i} is {:?} {:?}, its moment {:?} {:?}",
                        slot.var.dims(),
                        slot.var.dtype(),
                        t.dims(),
                        t.dtype()
                    );
                }
                t.to_device(slot.var.device())?.detach().contiguous()
            };
            moments.push((
                fit(&state.first_moments[i])?,
                fit(&state.second_moments[i])?,
            ));
        }
        for (slot, (m, v)) in self.slots.iter_mut().zip(moments) {
            slot.m = m;
            slot.v = v;
        }
        self.step = state.step;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use candle_nn::Optimizer;

    fn vars(dev: &Device) -> Vec<Var> {
        let t = |shape: &[usize], seed: f32| {
            let n: usize = shape.iter().product();
            let data: Vec<f32> = (0..n)
                .map(|i| ((i as f32 + seed) * 0.7361).sin() * 0.5)
                .collect();
            Var::from_tensor(&Tensor::from_vec(data, shape, dev).unwrap()).unwrap()
        };
        vec![t(&[3, 5], 1.0), t(&[4], 2.0), t(&[2, 3, 2], 3.0)]
    }

    /// A loss with a non-trivial gradient for every variable that changes
    /// with the variables' values.
    fn loss(vars: &[Var], round: usize) -> Tensor {
        let mut total = Tensor::new(0f32, &Device::Cpu).unwrap();
        for (k, v) in vars.iter().enumerate() {
            let w = (round + k + 1) as f64 * 0.3;
            let term = ((v.as_tensor() * w).unwrap().sin().unwrap() + v.as_tensor().sqr().unwrap())
                .unwrap()
                .sum_all()
                .unwrap();
            total = (total + term).unwrap();
        }
        total
    }

    fn bits(vars: &[Var]) -> Vec<Vec<u32>> {
        vars.iter()
            .map(|v| {
                v.as_tensor()
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap()
                    .into_iter()
                    .map(f32::to_bits)
                    .collect()
            })
            .collect()
    }

    fn params() -> AdamWParams {
        AdamWParams {
            lr: 0.05,
            weight_decay: 0.1,
            ..AdamWParams::default()
        }
    }

    fn candle_params() -> candle_nn::ParamsAdamW {
        let p = params();
        candle_nn::ParamsAdamW {
            lr: p.lr,
            beta1: p.beta1,
            beta2: p.beta2,
            eps: p.eps,
            weight_decay: p.weight_decay,
        }
    }

    #[test]
    fn updates_are_bit_identical_to_candles_adamw() {
        let dev = Device::Cpu;
        let (ours_vars, theirs_vars) = (vars(&dev), vars(&dev));
        let mut ours = AdamW::new(ours_vars.clone(), params()).unwrap();
        let mut theirs = candle_nn::AdamW::new(theirs_vars.clone(), candle_params()).unwrap();
        for round in 0..7 {
            let g = loss(&ours_vars, round).backward().unwrap();
            ours.step(&g).unwrap();
            let g = loss(&theirs_vars, round).backward().unwrap();
            theirs.step(&g).unwrap();
            assert_eq!(bits(&ours_vars), bits(&theirs_vars), "step {}", round + 1);
        }
        assert_eq!(ours.step_count(), 7);
        assert_ne!(
            bits(&ours_vars),
            bits(&vars(&dev)),
            "the steps changed nothing"
        );
    }

    #[test]
    fn a_restored_state_continues_bit_identically() {
        let dev = Device::Cpu;
        // Uninterrupted: 6 steps.
        let straight = vars(&dev);
        let mut opt = AdamW::new(straight.clone(), params()).unwrap();
        for round in 0..6 {
            opt.step(&loss(&straight, round).backward().unwrap())
                .unwrap();
        }
        // Interrupted after 2: copy weights and state into a fresh optimizer.
        let first = vars(&dev);
        let mut opt = AdamW::new(first.clone(), params()).unwrap();
        for round in 0..2 {
            opt.step(&loss(&first, round).backward().unwrap()).unwrap();
        }
        let state = opt.state();
        let saved: Vec<Tensor> = first
            .iter()
            .map(|v| v.as_tensor().copy().unwrap())
            .collect();
        opt.step(&loss(&first, 2).backward().unwrap()).unwrap();
        assert_eq!(state.step, 2, "a later step changed the snapshot");

        let second = vars(&dev);
        for (v, t) in second.iter().zip(&saved) {
            v.set(t).unwrap();
        }
        let mut opt = AdamW::new(second.clone(), params()).unwrap();
        opt.set_state(&state).unwrap();
        for round in 2..6 {
            opt.step(&loss(&second, round).backward().unwrap()).unwrap();
        }
        assert_eq!(bits(&second), bits(&straight));
        assert_eq!(opt.step_count(), 6);
    }

    #[test]
    fn a_state_of_other_shapes_is_refused_and_changes_nothing() {
        let dev = Device::Cpu;
        let mut opt = AdamW::new(vars(&dev), params()).unwrap();
        let mut state = opt.state();
        state.step = 5;
        state.first_moments[1] = Tensor::zeros(7, DType::F32, &dev).unwrap();
        let err = opt.set_state(&state).unwrap_err().to_string();
        assert!(err.contains("variable 1"), "{err}");
        assert_eq!(opt.step_count(), 0);
        state.first_moments.pop();
        assert!(opt.set_state(&state).is_err());
    }
}
