//! [`Sequential`]: children applied in order, each under its name scope.
//! A child that can fuse a following ReLU ([`Module::forward_relu`], e.g.
//! `Linear`) runs both as one op; the result is bit-identical to running
//! them apart.

use mixprec_tensor::Tensor;

use crate::error::{AutogradError, Result};
use crate::nn::{Module, no_buffer};
use crate::scan::name_scope;
use crate::var::Var;

/// Modules applied one after the other.
pub struct Sequential {
    children: Vec<(String, Box<dyn Module>)>,
    fuse: bool,
}

impl std::fmt::Debug for Sequential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sequential")
            .field("children", &self.children.iter().map(|(n, _)| n).collect::<Vec<_>>())
            .finish()
    }
}

impl Default for Sequential {
    fn default() -> Sequential {
        Sequential::new()
    }
}

impl Sequential {
    /// An empty container (fusion of a layer and a following ReLU on).
    pub fn new() -> Sequential {
        Sequential { children: Vec::new(), fuse: true }
    }

    /// Appends `module`, named by its position (`"0"`, `"1"`, …, as PyTorch).
    pub fn push(mut self, module: impl Module + 'static) -> Sequential {
        let name = self.children.len().to_string();
        self.children.push((name, Box::new(module)));
        self
    }

    /// Appends `module` under `name`.
    pub fn push_named(mut self, name: impl Into<String>, module: impl Module + 'static) -> Sequential {
        self.children.push((name.into(), Box::new(module)));
        self
    }

    /// Turns the fusion of a layer with a following ReLU on or off.
    pub fn fuse_relu(mut self, fuse: bool) -> Sequential {
        self.fuse = fuse;
        self
    }

    /// Number of children.
    pub fn len(&self) -> usize {
        self.children.len()
    }

    /// Whether there is no child.
    pub fn is_empty(&self) -> bool {
        self.children.is_empty()
    }
}

impl Module for Sequential {
    fn forward(&self, x: &Var) -> Result<Var> {
        let mut h = x.clone();
        let mut i = 0;
        while i < self.children.len() {
            let (name, m) = &self.children[i];
            let _scope = name_scope(name.as_str());
            let next_is_relu = self.fuse && self.children.get(i + 1).is_some_and(|(_, n)| n.is_relu());
            if next_is_relu && let Some(fused) = m.forward_relu(&h) {
                h = fused?;
                i += 2;
                continue;
            }
            h = m.forward(&h)?;
            i += 1;
        }
        Ok(h)
    }

    fn named_parameters(&self) -> Vec<(String, Var)> {
        let mut out = Vec::new();
        for (name, m) in &self.children {
            for (p, v) in m.named_parameters() {
                out.push((format!("{name}.{p}"), v));
            }
        }
        out
    }

    fn named_buffers(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for (name, m) in &self.children {
            for (b, t) in m.named_buffers() {
                out.push((format!("{name}.{b}"), t));
            }
        }
        out
    }

    fn set_buffer(&self, path: &str, value: Tensor) -> Result<()> {
        let child = self.children.iter().find_map(|(name, m)| {
            let rest = path.strip_prefix(name.as_str())?.strip_prefix('.')?;
            Some((name, m, rest))
        });
        let Some((name, m, rest)) = child.filter(|(_, m, rest)| m.named_buffers().iter().any(|(b, _)| b == rest))
        else {
            return Err(no_buffer(path));
        };
        m.set_buffer(rest, value).map_err(|e| match e {
            AutogradError::BadArgument { op, reason } => {
                AutogradError::BadArgument { op, reason: format!("{reason} (in child `{name}`)") }
            }
            e => e,
        })
    }

    fn set_training(&mut self, training: bool) {
        for (_, m) in &mut self.children {
            m.set_training(training);
        }
    }
}
