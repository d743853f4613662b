//! Atomic writes under SIGKILL: a child process writes checkpoints in a
//! loop, announcing each write; the parent kills it at a random moment
//! inside a write (≥ 100 times), then loads what is on disk: it must load,
//! and be the previous checkpoint or the one being written.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mixprec_amp::{Checkpoint, Precision};
use mixprec_autograd::tensor::Tensor;
use mixprec_autograd::tensor::random::Generator;

const ROLE: &str = "MIXPREC_CKPT_KILL_CHILD";
const TEST: &str = "killed_writers_leave_the_old_or_the_new_checkpoint";
/// Elements of the checkpoint's one tensor: 4 MiB, so a write (with its
/// fsyncs) lasts long enough for kills to land inside it.
const ELEMENTS: usize = 1 << 20;
const MID_WRITE_KILLS: usize = 120;

/// Checkpoint `generation`: its step is the generation and every element
/// of `w` encodes it, so a mixture of two would be visible.
fn generation(g: u64) -> Checkpoint {
    let w: Vec<f32> = (0..ELEMENTS).map(|i| (g * 1000 + (i % 1000) as u64) as f32).collect();
    Checkpoint {
        model: "kill-test".into(),
        precision: Precision::F32,
        step: g,
        params: vec![("w".into(), Tensor::from_vec(w, &[ELEMENTS]).unwrap())],
        masters: vec![],
        optimizer: None,
        scaler: None,
        rngs: vec![],
        buffers: vec![],
        extra: Default::default(),
    }
}

fn check(path: &Path) -> u64 {
    let c = Checkpoint::load(path).unwrap_or_else(|e| panic!("the surviving checkpoint does not load: {e}"));
    let w = c.params[0].1.to_vec_f32().unwrap();
    let g = c.step;
    assert!(w.iter().enumerate().all(|(i, &x)| x == (g * 1000 + (i % 1000) as u64) as f32), "generation {g} mixed");
    g
}

fn child(dir: &str, start: u64) {
    use std::io::Write;
    let path = PathBuf::from(dir).join("ckpt.safetensors");
    let mut out = std::io::stdout().lock();
    for g in start.. {
        let c = generation(g);
        writeln!(out, "writing {g}").unwrap();
        out.flush().unwrap();
        c.save(&path).unwrap();
        writeln!(out, "wrote {g}").unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn killed_writers_leave_the_old_or_the_new_checkpoint() {
    if let Ok(role) = std::env::var(ROLE) {
        let (dir, start) = role.split_once(':').unwrap();
        child(dir, start.parse().unwrap());
        return;
    }
    let dir = std::env::temp_dir().join(format!("mixprec-kill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ckpt.safetensors");
    generation(0).save(&path).unwrap();

    let exe = std::env::current_exe().unwrap();
    let mut rng = Generator::new(42);
    let (mut on_disk, mut next) = (0u64, 1u64);
    let (mut mid_write, mut attempts, mut got_old, mut got_new) = (0usize, 0usize, 0usize, 0usize);
    let mut write_time = Duration::from_millis(20);
    while mid_write < MID_WRITE_KILLS {
        attempts += 1;
        assert!(attempts < 20 * MID_WRITE_KILLS, "only {mid_write} of {attempts} kills landed inside a write");
        let mut proc = Command::new(&exe)
            .args(["--exact", TEST, "--nocapture", "--test-threads", "1"])
            .env(ROLE, format!("{}:{next}", dir.display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(proc.stdout.take().unwrap()).lines();
        // Kill inside the first, second or third write of this child.
        let target = next + rng.below(3);
        let mut started = Instant::now();
        // The harness may print "test <name> ... " on the same line first.
        let field =
            |line: &str, tag: &str| line.find(tag).map(|at| line[at + tag.len()..].trim().parse::<u64>().unwrap());
        let mut writing;
        loop {
            let line = lines.next().expect("the child reports its writes").unwrap();
            if let Some(g) = field(&line, "writing ") {
                writing = g;
                started = Instant::now();
                if g >= target {
                    std::thread::sleep(write_time.mul_f64(1.2 * rng.uniform_f64()));
                    proc.kill().unwrap();
                    break;
                }
            } else if let Some(g) = field(&line, "wrote ") {
                on_disk = g;
                // Calibrate the kill window from the writes that finished.
                write_time = (write_time * 3 + started.elapsed()) / 4;
            }
        }
        proc.wait().unwrap();
        // What the child reported before it died: the last write it began
        // is the new checkpoint, the last it finished the old one.
        for line in lines.map_while(Result::ok) {
            if let Some(g) = field(&line, "writing ") {
                writing = g;
            } else if let Some(g) = field(&line, "wrote ") {
                on_disk = g;
            }
        }
        let finished = on_disk == writing;
        if !finished {
            mid_write += 1;
        }
        let victim = writing;
        let g = check(&path);
        assert!(g == on_disk || g == victim, "found generation {g}, expected {on_disk} (old) or {victim} (new)");
        if !finished {
            if g == on_disk {
                got_old += 1;
            } else {
                got_new += 1;
            }
        }
        on_disk = g;
        next = victim + 1;
    }
    eprintln!(
        "{mid_write} kills inside a write ({attempts} kills in all, write ≈ {:?}): {got_old} left the old checkpoint, {got_new} the new one",
        write_time
    );
    assert!(got_old > 0, "some kills should land before the rename");
    std::fs::remove_dir_all(&dir).unwrap();
}
