"""Default prompts (Russian and English) that exist without any upload.

Generated once, on first use, with Debian's ``espeak-ng`` into ``<home>/cache/prompts/<lang>/<name>.wav``
as 8 kHz mono 16-bit PCM WAV — what rtpengine's ``play media`` reads and transcodes to the call's codec, and
what the simulator and the console play. Ringback and hold music are tones, not speech: the Russian ringback
(425 Hz, 1 s on, 4 s off) and a gentle two-note phrase. A file is regenerated only when missing, or when its
text changed (the text's hash is in the name of a marker beside it).
"""

from __future__ import annotations

import array
import hashlib
import math
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from vpbx.telephony.media.recordings import SAMPLE_RATE, write_wav

LANGUAGES = ("ru", "en")
PROMPTS: dict[str, dict[str, str]] = {
    "greeting": {
        "ru": "Здравствуйте! Вы позвонили в нашу компанию. Пожалуйста, оставайтесь на линии.",
        "en": "Hello! You have reached our company. Please stay on the line.",
    },
    "menu": {
        "ru": "Нажмите один, чтобы связаться с отделом продаж. Нажмите два, чтобы связаться с поддержкой. "
              "Или оставайтесь на линии.",
        "en": "Press one for sales. Press two for support. Or stay on the line.",
    },
    "voicemail": {
        "ru": "Сейчас никто не может ответить. Оставьте сообщение после сигнала.",
        "en": "Nobody can answer right now. Please leave a message after the tone.",
    },
    "rating": {
        "ru": "Пожалуйста, оцените качество разговора от одного до пяти.",
        "en": "Please rate the conversation from one to five.",
    },
    "callback": {
        "ru": "Все операторы заняты. Нажмите один, и мы вам перезвоним.",
        "en": "All our operators are busy. Press one and we will call you back.",
    },
    "closed": {
        "ru": "Сейчас мы не работаем. Пожалуйста, позвоните в рабочее время.",
        "en": "We are closed now. Please call again during working hours.",
    },
    "busy": {
        "ru": "Все операторы заняты. Пожалуйста, перезвоните позже.",
        "en": "All our operators are busy. Please call again later.",
    },
}
TONES = ("ringback", "holdmusic")
NAMES = (*PROMPTS, *TONES)


class PromptError(RuntimeError):
    pass


def espeak_binary() -> str:
    found = shutil.which("espeak-ng")
    if found is None:
        raise PromptError("espeak-ng is not installed (Debian: apt-get install espeak-ng); default prompts need it, "
                          "or upload the files through the API")
    return found


def _tone(parts: list[tuple[float, float]], *, amplitude: float = 6000.0) -> array.array[int]:
    """(frequency Hz or 0 for silence, seconds) segments."""
    out = array.array("h")
    for freq, seconds in parts:
        n = int(seconds * SAMPLE_RATE)
        if freq <= 0:
            out.extend([0] * n)
        else:
            step = 2 * math.pi * freq / SAMPLE_RATE
            out.extend(int(amplitude * math.sin(step * i)) for i in range(n))
    return out


def _tone_prompt(name: str) -> array.array[int]:
    if name == "ringback":
        return _tone([(425.0, 1.0), (0.0, 4.0)])  # GOST ringback cadence; rtpengine repeats it
    return _tone([(523.25, 0.4), (659.25, 0.4), (783.99, 0.4), (659.25, 0.4), (0.0, 0.4)], amplitude=4000.0)


def synthesize(text: str, lang: str, out: Path) -> None:
    """espeak-ng → 8 kHz mono 16-bit WAV at ``out`` (resampled by sox when present, else by espeak's rate)."""
    binary = espeak_binary()
    voice = {"ru": "ru", "en": "en-gb"}.get(lang, lang)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        raw = Path(tmp) / "speech.wav"
        done = subprocess.run([binary, "-v", voice, "-s", "150", "-w", str(raw), text], capture_output=True,
                              timeout=60, check=False)
        if done.returncode != 0 or not raw.is_file():
            raise PromptError(f"espeak-ng failed ({done.returncode}): {done.stderr.decode(errors='replace')[:200]}")
        from vpbx.services.audio import convert_to_wav8k

        data = convert_to_wav8k(raw.read_bytes(), "wav")
        part = out.with_name(out.name + ".part")
        part.write_bytes(data)
        os.replace(part, out)


class Prompts:
    """The default prompts under ``<home>/cache/prompts``; ``path(name, lang)`` generates on first use."""

    def __init__(self, home: Path) -> None:
        self.root = home / "cache" / "prompts"

    def path(self, name: str, lang: str = "ru") -> Path:
        if name not in NAMES:
            raise PromptError(f"no default prompt {name!r}: one of {', '.join(NAMES)}")
        if lang not in LANGUAGES:
            raise PromptError(f"no default prompts in {lang!r}: one of {', '.join(LANGUAGES)}")
        out = self.root / lang / f"{name}.wav"
        if name in TONES:
            marker_text = f"tone-v1:{name}"
        else:
            marker_text = PROMPTS[name][lang]
        marker = out.with_suffix("." + hashlib.sha256(marker_text.encode()).hexdigest()[:12])
        if out.is_file() and marker.is_file():
            return out
        if name in TONES:
            out.parent.mkdir(parents=True, exist_ok=True)
            write_wav(out, _tone_prompt(name))
        else:
            synthesize(marker_text, lang, out)
        for old in out.parent.glob(f"{name}.*"):
            if old not in (out,) and old.suffix not in (".wav", ".part"):
                old.unlink(missing_ok=True)
        marker.touch()
        return out

    def ensure_all(self) -> list[Path]:
        return [self.path(n, lang) for lang in LANGUAGES for n in NAMES]
