//! Replays every kept input of `crates/fuzz/regressions/<target>/` (each once a finding, since
//! fixed) and requires a good answer.

use std::path::Path;

use longrun_fuzz::Target;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kept_input_gets_a_good_answer() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("regressions");
    let mut replayed = 0;
    let mut failures = Vec::new();
    for target in Target::ALL {
        let dir = root.join(target.name());
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<_> = entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|e| e == "json" || e == "bin"))
            .collect();
        files.sort();
        for file in files {
            let bytes = std::fs::read(&file).expect("a kept input is readable");
            replayed += 1;
            if let Err(problem) = longrun_fuzz::replay(target, &bytes).await {
                failures.push(format!("{}: {problem}", file.display()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(replayed > 0, "no kept input found under {}", root.display());
}
