//! [`Record`]: the one JSON object a run prints (DESIGN.md "Example command
//! line and output"): exactly these keys, `null` where a value does not
//! apply, never NaN (a non-finite number becomes `null`).

use serde::Serialize;

/// Peak tensor bytes per dtype.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BytesByDtype {
    /// FP32 storage.
    pub f32: u64,
    /// f16 storage.
    pub f16: u64,
    /// bf16 storage.
    pub bf16: u64,
}

/// One run's result, serialised with its keys in DESIGN.md's order.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Record {
    /// The example's name (`mnist_mlp`).
    pub example: String,
    /// The precision token (`master-weights`).
    pub precision: String,
    /// The loss-scale token (`dynamic`, `static:1024`, `none`).
    pub loss_scale: String,
    /// Epochs asked for.
    pub epochs: u64,
    /// Optimizer steps taken (skipped ones included).
    pub steps: u64,
    /// Examples per step.
    pub batch_size: u64,
    /// Peak learning rate.
    pub lr: f64,
    /// The seed.
    pub seed: u64,
    /// Worker threads.
    pub threads: u64,
    /// The kernel path (`avx512`).
    pub isa: String,
    /// Mean training loss over the last epoch.
    pub final_train_loss: Option<f64>,
    /// Test accuracy, a fraction (classifiers).
    pub test_accuracy: Option<f64>,
    /// Validation loss in nats per token (language models).
    pub val_loss_nats: Option<f64>,
    /// `exp(val_loss_nats)`.
    pub perplexity: Option<f64>,
    /// Seconds in the training loop (evaluation and data loading excluded).
    pub seconds: f64,
    /// `steps / seconds`.
    pub steps_per_second: Option<f64>,
    /// Peak bytes of tensor storage during training (the data set excluded).
    pub peak_tensor_bytes: u64,
    /// The same, per dtype.
    pub peak_tensor_bytes_by_dtype: BytesByDtype,
    /// Peak bytes saved for backward.
    pub peak_activation_bytes: u64,
    /// Steps skipped for Inf/NaN gradients.
    pub skipped_steps: u64,
    /// The loss scale at the end (`null` without scaling).
    pub final_loss_scale: Option<f64>,
}

/// The keys of [`Record`], in order (what a consumer may rely on).
pub const KEYS: [&str; 21] = [
    "example",
    "precision",
    "loss_scale",
    "epochs",
    "steps",
    "batch_size",
    "lr",
    "seed",
    "threads",
    "isa",
    "final_train_loss",
    "test_accuracy",
    "val_loss_nats",
    "perplexity",
    "seconds",
    "steps_per_second",
    "peak_tensor_bytes",
    "peak_tensor_bytes_by_dtype",
    "peak_activation_bytes",
    "skipped_steps",
    "final_loss_scale",
];

/// `Some(x)` if `x` is finite.
pub fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

impl Record {
    /// The record as one line of JSON.
    pub fn to_json(&self) -> String {
        let mut r = self.clone();
        // serde_json writes NaN/Inf as null for Option-less floats; keep the
        // non-optional ones finite explicitly so the schema's types hold.
        if !r.seconds.is_finite() {
            r.seconds = 0.0;
        }
        r.final_train_loss = r.final_train_loss.and_then(finite);
        r.test_accuracy = r.test_accuracy.and_then(finite);
        r.val_loss_nats = r.val_loss_nats.and_then(finite);
        r.perplexity = r.perplexity.and_then(finite);
        r.steps_per_second = r.steps_per_second.and_then(finite);
        r.final_loss_scale = r.final_loss_scale.and_then(finite);
        serde_json::to_string(&r).expect("a record of numbers and strings serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_exactly_the_keys_in_order_and_no_nan() {
        let r = Record {
            example: "x".into(),
            precision: "f32".into(),
            loss_scale: "none".into(),
            epochs: 1,
            steps: 2,
            batch_size: 3,
            lr: 0.1,
            seed: 1,
            threads: 2,
            isa: "avx2".into(),
            final_train_loss: Some(f64::NAN),
            test_accuracy: Some(0.5),
            val_loss_nats: None,
            perplexity: Some(f64::INFINITY),
            seconds: 1.5,
            steps_per_second: Some(1.0),
            peak_tensor_bytes: 10,
            peak_tensor_bytes_by_dtype: BytesByDtype { f32: 8, f16: 2, bf16: 0 },
            peak_activation_bytes: 4,
            skipped_steps: 0,
            final_loss_scale: None,
        };
        let line = r.to_json();
        assert!(!line.contains('\n') && !line.contains("NaN"), "{line}");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let obj = v.as_object().unwrap();
        assert_eq!(obj.keys().map(String::as_str).collect::<Vec<_>>().len(), KEYS.len());
        for k in KEYS {
            assert!(obj.contains_key(k), "{k}");
        }
        // Key order as written (serde_json without preserve_order sorts on
        // parse, so check the raw text).
        let positions: Vec<usize> = KEYS.iter().map(|k| line.find(&format!("\"{k}\":")).unwrap()).collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{line}");
        assert!(obj["final_train_loss"].is_null() && obj["perplexity"].is_null());
        assert_eq!(obj["peak_tensor_bytes_by_dtype"]["f16"], 2);
    }
}
