"""Settings declared once. A config dataclass marks each field a user may set with ``setting(...)``: its help, its
limits or choices, and the label of its row where the GUI's form shows it. From that one declaration

* ``check`` validates an instance, with messages that name the setting as the user typed it;
* ``add_options`` / ``from_options`` give a command its CLI options and build the config from them;
* ``wsv_gui.settings_form.SettingsForm`` builds the form rows (and keeps their last values per project).

A config may add settings that are not fields of its own through ``extra_settings()`` (the training terms'
weights, declared with each term in engine.training.terms, live in one dict field), so a new setting is always
one declaration.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import typing
from dataclasses import MISSING, dataclass, field
from typing import Any, Callable, Mapping, Sequence

from engine.errors import UserError


class SettingError(UserError, ValueError):
    """A setting's value is out of its range or not among its choices."""


@dataclass(frozen=True)
class Spec:
    help: str
    label: str | None = None
    """the GUI form row's label; None keeps the setting out of the form"""
    choices: Sequence[str] | Callable[[], Sequence[str]] | None = None
    """allowed values (a callable where they depend on the machine, such as the models whose weights exist)"""
    suggestions: Callable[[], Sequence[str]] | None = None
    """values the form offers for a free-text setting (the devices on this machine), not enforced"""
    low: float | None = None
    """least allowed value"""
    high: float | None = None
    """greatest allowed value"""
    positive: bool = False
    """the value must be above 0"""
    flag: str | None = None
    """the CLI option's and form key's name where it differs from the field's"""
    words: tuple[str, str] | None = None
    """a yes/no setting offered as two words, (for True, for False)"""
    decimals: int = 4
    step: float | None = None
    """the form's step; None steps by the value's own last digit (for values spanning orders of magnitude)"""
    follows: tuple[str, Mapping[str, Any]] | None = None
    """(another setting, its value -> this one's default): the form resets this one when the other changes"""
    cli: bool = True
    """False: not a CLI option (set by the program, such as the GUI's preview interval)"""


def setting(default: Any = MISSING, *, default_factory: Any = MISSING, **spec: Any) -> Any:
    """A dataclass field carrying its Spec (``help`` and the rest of Spec's fields as keywords)."""
    return field(default=default, default_factory=default_factory, metadata={"setting": Spec(**spec)})


@dataclass(frozen=True)
class Setting:
    """One setting of a config class, resolved: its field, type and default with its Spec."""

    field: str
    kind: type
    """int, float, str or bool"""
    optional: bool
    """None is allowed (it means what the help says)"""
    default: Any
    spec: Spec
    key: str | None = None
    """for a setting kept as an entry of a dict field: its key there (its Spec then names it with ``flag``)"""

    @property
    def name(self) -> str:
        return self.spec.flag or self.field

    @property
    def option(self) -> str:
        return "--" + self.name.replace("_", "-")

    def choices(self) -> tuple[str, ...] | None:
        if self.spec.words is not None:
            return self.spec.words
        c = self.spec.choices
        return None if c is None else tuple(c() if callable(c) else c)

    def get(self, config: Any) -> Any:
        value = getattr(config, self.field)
        return value.get(self.key, self.default) if self.key is not None else value

    def put(self, values: dict, value: Any) -> None:
        """Set ``value`` in the keyword arguments of a config under construction."""
        if self.key is not None:
            values.setdefault(self.field, {})[self.key] = value
        else:
            values[self.field] = value

    def check(self, value: Any) -> None:
        """Raise SettingError, naming the setting as the config calls it (``max_minutes``), where ``value`` is
        not allowed."""
        s = self.spec
        if value is None:
            if not self.optional:
                raise SettingError(f"{self.name} needs a value")
            return
        if self.kind is bool:
            if not isinstance(value, bool):
                raise SettingError(f"{self.name} must be true or false, got {value!r}")
            return
        if self.kind is str:
            choices = self.choices()
            if choices is not None and value not in choices:
                raise SettingError(f"{self.name} must be one of {', '.join(choices)}; got {value!r}")
            return
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise SettingError(f"{self.name} must be a {'positive' if s.positive else 'finite'} number, got {value!r}")
        if self.kind is int and value != int(value):
            raise SettingError(f"{self.name} must be a whole number, got {value!r}")
        choices = self.choices()
        if choices is not None and value not in choices:
            raise SettingError(f"{self.name} must be one of {', '.join(map(str, choices))}; got {value:g}")
        if s.positive and not value > 0:
            raise SettingError(f"{self.name} must be a positive number, got {value:g}")
        if s.low is not None and value < s.low:
            raise SettingError(f"{self.name} must be at least {s.low:g}, got {value:g}")
        if s.high is not None and value > s.high:
            raise SettingError(f"{self.name} must be at most {s.high:g}, got {value:g}")


def settings(cls_or_config: Any) -> list[Setting]:
    """The settings of a config class (or instance): its fields declared with ``setting``, then its extras."""
    cls = cls_or_config if isinstance(cls_or_config, type) else type(cls_or_config)
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        spec = f.metadata.get("setting")
        if spec is None:
            continue
        kind, optional = _kind(hints[f.name])
        default = f.default_factory() if f.default is MISSING else f.default
        out.append(Setting(f.name, kind, optional, default, spec))
    extra = getattr(cls, "extra_settings", None)
    return out + (list(extra()) if extra is not None else [])


def _kind(hint: Any) -> tuple[type, bool]:
    args = typing.get_args(hint)
    optional = type(None) in args
    if optional:
        hint = next(a for a in args if a is not type(None))
    if hint not in (int, float, str, bool):
        raise TypeError(f"a setting must be an int, float, str or bool (or None), not {hint}")
    return hint, optional


def check(config: Any) -> None:
    """Validate every setting of ``config``; the first bad one raises SettingError."""
    for s in settings(config):
        s.check(s.get(config))


def add_options(parser: argparse.ArgumentParser, cls: type, skip: Sequence[str] = (),
                defaults: Mapping[str, Any] | None = None) -> None:
    """An option per CLI setting of ``cls`` (by name, less ``skip``), its default the declared one unless
    ``defaults`` gives the command's own (``wsv train`` stops after 4.5 minutes where the config has no limit)."""
    defaults = defaults or {}
    for s in settings(cls):
        if not s.spec.cli or s.name in skip or s.option in parser._option_string_actions:
            continue  # an option already there comes from another config the command builds (same name)
        default = defaults.get(s.name, s.default)
        shown = default
        if s.kind is bool and s.spec.words is not None:
            shown = s.spec.words[0 if default else 1]
        suffix = "" if shown is None else f" (default {shown})"
        kwargs: dict[str, Any] = {"dest": s.name, "default": shown, "help": (s.spec.help + suffix).replace("%", "%%")}
        if s.kind is bool and s.spec.words is None:
            kwargs.update(action=argparse.BooleanOptionalAction)
        else:
            choices = s.choices()
            kwargs.update(type=str if s.kind is bool else s.kind, choices=choices)
        parser.add_argument(s.option, **kwargs)


def from_options(cls: type, args: argparse.Namespace, **fixed: Any) -> Any:
    """A ``cls`` from the parsed CLI settings, with ``fixed`` (fields the command sets itself) on top; a bad
    value raises SettingError naming its option."""
    values: dict[str, Any] = {}
    for s in settings(cls):
        if not s.spec.cli or not hasattr(args, s.name):
            continue
        value = getattr(args, s.name)
        if s.kind is bool and s.spec.words is not None:
            value = value == s.spec.words[0]
        s.put(values, value)
    for name, value in fixed.items():
        if isinstance(value, dict) and isinstance(values.get(name), dict):
            values[name].update(value)
        else:
            values[name] = value
    return cls(**values)
