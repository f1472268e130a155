"""gm-notes-16k: single notes of ten General MIDI instruments, a small NSynth.

Source: Debian ``fluidsynth`` and ``fluid-soundfont-gm`` (FluidR3_GM.sf2). For every
(instrument, velocity) one MIDI file (written with ``mido``) holds all pitches, one every
2 s, each held 0.75 s; fluidsynth renders it at 16 kHz without reverb or chorus, and each
note becomes a 1 s mono clip (the note's first second: attack, hold and most of the release),
peak-normalised to 0.9 and stored as 16-bit WAV. Notes the sound font leaves silent are
skipped and counted. Every 10th note by a hash of its labels goes to the test split.

Layout: ``OUT/{train,test}/<instrument>/p<pitch>_v<velocity>.wav`` (the folder is the class),
``OUT/metadata.csv`` (file, split, instrument, program, pitch, velocity, peak) and
``OUT/dataset.json``.
"""

from __future__ import annotations

import csv
import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from studio.data.common import write_manifest

RATE = 16_000
PROGRAMS = {  # General MIDI program numbers (0-based) -> folder names
    0: "piano",
    11: "vibraphone",
    19: "organ",
    24: "guitar",
    33: "bass",
    40: "violin",
    48: "strings",
    56: "trumpet",
    73: "flute",
    80: "synth_lead",
}
PITCHES = tuple(range(36, 85, 2))  # C2 .. C6 every whole tone
VELOCITIES = (75, 115)
CLIP_SECONDS = 1.0
HOLD_SECONDS = 0.75
SPACING_SECONDS = 2.0
PEAK = 0.9
SILENT = 1e-3
TEST_EVERY = 10
SOUNDFONT_PATHS = (
    Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"),
    Path("/usr/share/soundfonts/FluidR3_GM.sf2"),
)


def find_soundfont() -> Path:
    for path in SOUNDFONT_PATHS:
        if path.exists():
            return path
    raise FileNotFoundError("FluidR3_GM.sf2 is missing: run `apt-get install fluid-soundfont-gm`")


def write_midi(path: Path, program: int, velocity: int, pitches: tuple[int, ...]) -> None:
    import mido

    ticks_per_second = 960  # 480 ticks per beat at 120 bpm
    midi = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    midi.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=500_000, time=0))
    track.append(mido.Message("program_change", program=program, channel=0, time=0))
    hold = round(HOLD_SECONDS * ticks_per_second)
    rest = round((SPACING_SECONDS - HOLD_SECONDS) * ticks_per_second)
    for index, pitch in enumerate(pitches):
        track.append(mido.Message("note_on", note=pitch, velocity=velocity, channel=0, time=0 if index == 0 else rest))
        track.append(mido.Message("note_off", note=pitch, velocity=0, channel=0, time=hold))
    track.append(mido.MetaMessage("end_of_track", time=rest))
    midi.save(str(path))


def render(midi: Path, wav: Path, soundfont: Path) -> np.ndarray:
    """fluidsynth's float output as mono (n,) float32."""
    import soundfile as sf

    if shutil.which("fluidsynth") is None:
        raise FileNotFoundError("fluidsynth is missing: run `apt-get install fluidsynth`")
    command = ["fluidsynth", "-ni", "-g", "0.5", "-R", "0", "-C", "0", "-r", str(RATE),
               "-O", "float", "-T", "wav", "-F", str(wav), str(soundfont), str(midi)]
    subprocess.run(command, check=True, capture_output=True)
    samples, rate = sf.read(str(wav), dtype="float32", always_2d=True)
    if rate != RATE:
        raise RuntimeError(f"fluidsynth wrote {rate} Hz instead of {RATE} Hz")
    return samples.mean(axis=1)


def is_test(program: int, pitch: int, velocity: int) -> bool:
    key = f"{program}-{pitch}-{velocity}".encode()
    return int(hashlib.sha256(key).hexdigest(), 16) % TEST_EVERY == 0


def build(out: Path) -> dict:
    import soundfile as sf

    soundfont = find_soundfont()
    out = Path(out)
    rows, counts, silent = [], {"train": 0, "test": 0}, []
    clip = round(CLIP_SECONDS * RATE)
    spacing = round(SPACING_SECONDS * RATE)
    with tempfile.TemporaryDirectory() as tmp:
        for program, instrument in PROGRAMS.items():
            for velocity in VELOCITIES:
                midi, wav = Path(tmp) / "notes.mid", Path(tmp) / "notes.wav"
                write_midi(midi, program, velocity, PITCHES)
                audio = render(midi, wav, soundfont)
                audio = np.pad(audio, (0, max(0, len(PITCHES) * spacing - len(audio))))
                for index, pitch in enumerate(PITCHES):
                    note = audio[index * spacing : index * spacing + clip]
                    peak = float(np.abs(note).max())
                    if peak < SILENT:
                        silent.append(f"{instrument} pitch {pitch} velocity {velocity}")
                        continue
                    split = "test" if is_test(program, pitch, velocity) else "train"
                    folder = out / split / instrument
                    folder.mkdir(parents=True, exist_ok=True)
                    name = f"p{pitch:03d}_v{velocity:03d}.wav"
                    sf.write(str(folder / name), note * (PEAK / peak), RATE, subtype="PCM_16")
                    rows.append((f"{split}/{instrument}/{name}", split, instrument, program, pitch, velocity,
                                 round(peak, 6)))
                    counts[split] += 1
    with open(out / "metadata.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(("file", "split", "instrument", "program", "pitch", "velocity", "peak"))
        writer.writerows(rows)
    return write_manifest(out, {
        "name": "gm-notes-16k",
        "source": f"{soundfont} (Debian fluid-soundfont-gm) rendered by fluidsynth, no reverb or chorus",
        "licence": "FluidR3_GM sound font: MIT (Frank Wen); the clips are renderings of it",
        "format": f"{RATE} Hz mono 16-bit WAV, {CLIP_SECONDS} s per note ({HOLD_SECONDS} s held), "
                  f"peak-normalised to {PEAK}",
        "instruments": {name: program for program, name in PROGRAMS.items()},
        "pitches": list(PITCHES),
        "velocities": list(VELOCITIES),
        "splits": counts,
        "silent_skipped": silent,
        "split_rule": f"test if sha256('program-pitch-velocity') % {TEST_EVERY} == 0",
    })
