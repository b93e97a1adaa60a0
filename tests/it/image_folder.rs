//! `dataset = "image_folder"`: a folder of PNG and JPEG files in class subfolders trains
//! with MLP and conv models, grey and RGB, and the trained-model commands draw it; a file
//! that is not an image is refused naming it, before anything is written.

use std::path::Path;

use crate::common::{record, run_sweep, runner, write};

/// 24 images of 12×10 pixels (not square: they are cropped) in two class subfolders, half
/// PNG and half JPEG: bright discs and dark squares, with the position varying.
fn image_folder(root: &Path) {
    for (class, bright) in [("discs", true), ("squares", false)] {
        let dir = root.join(class);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..12u32 {
            let img = image::RgbImage::from_fn(12, 10, |x, y| {
                let (cx, cy) = (3 + i % 6, 3 + i % 4);
                let inside = if bright {
                    (x as i32 - cx as i32).pow(2) + (y as i32 - cy as i32).pow(2) <= 6
                } else {
                    x.abs_diff(cx) <= 2 && y.abs_diff(cy) <= 2
                };
                match (inside, bright) {
                    (true, true) => image::Rgb([250, 200, 30]),
                    (true, false) => image::Rgb([20, 40, 200]),
                    _ => image::Rgb([90, 90, 90]),
                }
            });
            let ext = if i % 2 == 0 { "png" } else { "jpg" };
            img.save(dir.join(format!("{i}.{ext}"))).unwrap();
        }
    }
}

fn spec(dir: &Path, name: &str, data: &Path, extra: &str) -> std::path::PathBuf {
    write(
        dir,
        &format!("{name}.toml"),
        &format!(
            "name = \"{name}\"\n[data]\ndataset = \"image_folder\"\npath = \"{}\"\nimage_size = 8\n{extra}[train]\nepochs = 2\nbatch_size = 8\n[eval]\nimportance_samples = 20\nimages_every_epochs = 1\n",
            data.display()
        ),
    )
}

#[test]
fn a_folder_of_png_and_jpeg_in_class_subfolders_trains_grey_and_rgb_mlp_and_conv() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("images");
    image_folder(&data);
    let cache = dir.path().join("cache");
    let results = dir.path().join("results");
    let conv = "[model]\nlatent_dim = 2\nencoder = { conv = [{ channels = 4, kernel = 4, stride = 2, padding = 1 }], hidden = [16] }\ndecoder = { hidden = [16], conv = [{ channels = 4, kernel = 4, stride = 2, padding = 1 }] }\n";
    let mlp = "[model]\nlatent_dim = 2\nencoder = { hidden = [16] }\ndecoder = { hidden = [16] }\n";
    for (name, extra) in [
        ("grey_mlp", format!("channels = 1\n{mlp}")),
        ("rgb_mlp", mlp.to_string()),
        ("rgb_conv", conv.to_string()),
    ] {
        let spec = spec(dir.path(), name, &data, &extra);
        let out = runner()
            .arg("sweep")
            .arg(&spec)
            .arg("--set")
            .arg(format!("runtime.results_dir={}", results.display()))
            .env("AEVB_CACHE_DIR", &cache)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{name}: {stderr}");
        let row = record(&results, name);
        assert_eq!(row["status"], "ok", "{name}");
        // 24 images, the default test fraction 0.2: 5 test examples.
        assert_eq!(row["log_px_examples"], 5, "{name}");
        assert!(row["test_elbo"].as_f64().unwrap().is_finite(), "{name}");
    }
    // Decoded once: the cache holds the grey and the RGB pixels.
    let cached = std::fs::read_dir(cache.join("image_folder"))
        .unwrap()
        .count();
    assert_eq!(cached, 2);
    // The trained-model commands draw it and encode it with its classes as labels.
    let run = crate::common::run_dir(&results, "rgb_conv");
    for command in [
        &["sample", "-n", "4"][..],
        &["reconstruct", "-n", "3"],
        &["encode"],
    ] {
        let out = runner().args(command).arg(&run).output().unwrap();
        assert!(
            out.status.success(),
            "{command:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let encoded = crate::common::read_parquet(&run.join("figures/encoded.parquet"));
    let labels = encoded.column("label").unwrap().u32().unwrap().clone();
    assert!(labels.iter().all(|l| l.is_some_and(|l| l < 2)));
}

#[test]
fn a_file_that_is_not_an_image_is_refused_naming_it_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("images");
    image_folder(&data);
    std::fs::write(data.join("discs/broken.png"), b"not a png").unwrap();
    let spec = spec(dir.path(), "broken", &data, "");
    let results = dir.path().join("results");
    crate::common::assert_refused(
        &spec,
        &results,
        &[],
        "broken.png",
        "cannot be read as an image",
    );
    let out = run_sweep(&spec, &results, &["--set", "data.channels=2"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("data.channels"));
}
