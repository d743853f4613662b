//! Statistics-driven loss scaling against GradScaler's rule on DESIGN.md's
//! MNIST MLP (784-512-512-10, ReLU, batch 128, O2 master weights, SGD
//! momentum 0.9 with a cosine decay from 0.1, one epoch of the shipped
//! MNIST), both started at 2^24, seeds 1–3: per seed the statistics rule
//! skips no more steps than GradScaler's, strictly fewer where GradScaler
//! skips any, and its activation-gradient underflow fraction (sampled every
//! 25 steps, 1 value in 8) stays within 1.1× of GradScaler's.

use mixprec::amp::scaler::ScalerConfig;
use mixprec::amp::{F16Underflow, GradScaler, MasterWeights, Precision, autocast, measure_underflow};
use mixprec::autograd::nn::{Linear, Module, Relu, Sequential};
use mixprec::autograd::optim::schedule::CosineLr;
use mixprec::autograd::optim::{Sgd, SgdConfig};
use mixprec::autograd::{CrossEntropy, Var, no_grad};
use mixprec::data::{BatchConfig, Mnist, Normalize};
use mixprec::tensor::DType;
use mixprec::tensor::random::Generator;

struct Run {
    skipped: u64,
    underflow: F16Underflow,
    accuracy: f64,
    final_scale: f32,
}

fn train(mnist: &Mnist, seed: u64, config: ScalerConfig) -> Run {
    let mut rng = Generator::new(seed);
    let model = Sequential::new()
        .push(Linear::new(784, 512, &mut rng).unwrap())
        .push(Relu)
        .push(Linear::new(512, 512, &mut rng).unwrap())
        .push(Relu)
        .push(Linear::new(512, 10, &mut rng).unwrap());
    let sgd = |m: Vec<Var>| Ok(Sgd::new(m, SgdConfig { lr: 0.1, momentum: 0.9, ..SgdConfig::default() })?);
    let mut opt = MasterWeights::new(model.named_parameters(), DType::F16, sgd).unwrap();
    let mut scaler = GradScaler::new(config).unwrap();
    let params = model.parameters();
    let batches =
        mnist.train.batches(&BatchConfig::new(128).shuffle(true), &mut rng, DType::F32, Normalize::MNIST).unwrap();
    let schedule = CosineLr { base: 0.1, min: 0.0, total: batches.len() };
    let mut underflow = F16Underflow::default();
    for (step, b) in batches.enumerate() {
        let x = Var::new(b.inputs.reshape(&[b.targets.len(), 784]).unwrap());
        let forward = || Ok(model.forward(&x)?.cross_entropy(&b.targets, CrossEntropy::default())?);
        opt.zero_grad();
        let loss = autocast(Precision::MasterWeights, forward).unwrap();
        scaler.scale(&loss).unwrap().backward().unwrap();
        if step % 25 == 0 {
            underflow.add(measure_underflow(&params, scaler.scale_factor(), 8, forward).unwrap().activations);
        }
        scaler.step_scheduled(&mut opt, &schedule).unwrap();
        scaler.update().unwrap();
    }
    let n = mnist.test.len();
    let t = mnist.test.batch(&(0..n).collect::<Vec<_>>(), DType::F32, Normalize::MNIST).unwrap();
    let x = Var::new(t.inputs.reshape(&[n, 784]).unwrap());
    let pred = no_grad(|| autocast(Precision::MasterWeights, || model.forward(&x))).unwrap();
    let pred = pred.value().to_dtype(DType::F32).unwrap().argmax_indices(1).unwrap();
    let accuracy = pred.iter().zip(&t.targets).filter(|(p, l)| p == l).count() as f64 / n as f64;
    Run { skipped: scaler.skipped_steps(), underflow, accuracy, final_scale: scaler.scale_factor() }
}

#[test]
fn statistics_driven_scaling_skips_fewer_steps_than_gradscaler() {
    let mnist = Mnist::shipped().expect("the shipped MNIST (data/mnist or $MIXPREC_DATA_DIR)");
    let start = 2f32.powi(24);
    for seed in 1..=3 {
        let gs = train(&mnist, seed, ScalerConfig { init_scale: start, ..ScalerConfig::default() });
        let st = train(&mnist, seed, ScalerConfig::statistics(start));
        eprintln!(
            "seed {seed}: skipped GradScaler {} statistics {}; activation underflow (flushed to zero) {:.3e} vs {:.3e}; final scale {} vs {}; accuracy {:.4} vs {:.4}",
            gs.skipped,
            st.skipped,
            gs.underflow.zero_fraction(),
            st.underflow.zero_fraction(),
            gs.final_scale,
            st.final_scale,
            gs.accuracy,
            st.accuracy
        );
        assert!(st.skipped <= gs.skipped, "seed {seed}: {} > {}", st.skipped, gs.skipped);
        if gs.skipped > 0 {
            assert!(st.skipped < gs.skipped, "seed {seed}: not strictly fewer: {} vs {}", st.skipped, gs.skipped);
        }
        assert!(
            st.underflow.zero_fraction() <= 1.1 * gs.underflow.zero_fraction(),
            "seed {seed}: underflow {} vs {}",
            st.underflow.zero_fraction(),
            gs.underflow.zero_fraction()
        );
        assert!(st.accuracy > 0.95 && (st.accuracy - gs.accuracy).abs() < 0.01);
    }
}

/// The char-LM of DESIGN.md (embedding 64, 2-layer LSTM 256, sequence 64,
/// batch 32, the shipped Shakespeare), O1 autocast with Adam (lr 2e-3),
/// the first `MIXPREC_CHAR_LM_STEPS` (default 150) steps, both scalers
/// started at 2^24, seeds 1–3. Ignored by default (minutes on two cores):
/// `cargo test --release --test amp_stats_scaling -- --ignored --nocapture`.
#[test]
#[ignore]
fn statistics_driven_scaling_on_the_char_lm() {
    use mixprec::autograd::nn::{Embedding, LSTM};
    use mixprec::autograd::optim::{Adam, AdamConfig};
    use mixprec::data::{Sequences, TextCorpus, shipped_shakespeare};
    let corpus = TextCorpus::load(shipped_shakespeare()).expect("the shipped Shakespeare");
    let steps: usize = std::env::var("MIXPREC_CHAR_LM_STEPS").ok().and_then(|s| s.parse().ok()).unwrap_or(150);
    let (train_ids, _) = corpus.split(0.9).unwrap();
    let seqs = Sequences::new(train_ids, 64).unwrap();
    let v = corpus.vocab().len();
    let run = |seed: u64, config: ScalerConfig| -> (u64, F16Underflow, f64) {
        let mut rng = Generator::new(seed);
        let emb = Embedding::new(v, 64, &mut rng).unwrap();
        let lstm = LSTM::new(64, 256, 2, &mut rng).unwrap();
        let head = Linear::new(256, v, &mut rng).unwrap();
        let params: Vec<Var> = [emb.parameters(), lstm.parameters(), head.parameters()].concat();
        let mut opt = Adam::new(params.clone(), AdamConfig { lr: 2e-3, ..AdamConfig::adam() }).unwrap();
        let mut scaler = GradScaler::new(config).unwrap();
        let mut underflow = F16Underflow::default();
        let mut last = 0.0;
        let batches = seqs.batches(&BatchConfig::new(32).shuffle(true), &mut rng).unwrap();
        for (step, b) in batches.take(steps).enumerate() {
            let (bs, t) = (b.batch, b.seq_len);
            // Time-first, as the LSTM takes it.
            let idx: Vec<usize> = (0..t * bs).map(|i| b.inputs[(i % bs) * t + i / bs]).collect();
            let tgt: Vec<usize> = (0..t * bs).map(|i| b.targets[(i % bs) * t + i / bs]).collect();
            let forward = || -> mixprec::amp::Result<Var> {
                let x = emb.lookup(&idx, &[t, bs])?;
                let h = lstm.forward(&x)?.reshape(&[t * bs, 256])?;
                Ok(head.forward(&h)?.cross_entropy(&tgt, CrossEntropy::default())?)
            };
            params.iter().for_each(Var::zero_grad);
            let loss = autocast(Precision::Autocast, forward).unwrap();
            last = loss.item().unwrap();
            scaler.scale(&loss).unwrap().backward().unwrap();
            if step % 25 == 0 {
                underflow.add(measure_underflow(&params, scaler.scale_factor(), 8, forward).unwrap().activations);
            }
            scaler.step(&mut opt).unwrap();
            scaler.update().unwrap();
        }
        (scaler.skipped_steps(), underflow, last)
    };
    let start = 2f32.powi(24);
    for seed in 1..=3 {
        let (gs, gu, gl) = run(seed, ScalerConfig { init_scale: start, ..ScalerConfig::default() });
        let (st, su, sl) = run(seed, ScalerConfig::statistics(start));
        eprintln!(
            "char-LM seed {seed}, {steps} steps: skipped GradScaler {gs} statistics {st}; activation underflow {:.3e} vs {:.3e}; last loss {gl:.3} vs {sl:.3}",
            gu.zero_fraction(),
            su.zero_fraction()
        );
        assert!(st <= gs && (gs == 0 || st < gs), "seed {seed}: {st} vs {gs}");
        assert!(su.zero_fraction() <= 1.1 * gu.zero_fraction(), "seed {seed}");
    }
}
