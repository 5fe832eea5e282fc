"""Import a FunctionApp and describe its functions from the metadata they registered (``app.get_functions()``)."""

from __future__ import annotations

import enum
import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

HTTP_TRIGGER = "httpTrigger"
TIMER_TRIGGER = "timerTrigger"
QUEUE_TRIGGER = "queueTrigger"
SUPPORTED_TRIGGERS = (HTTP_TRIGGER, TIMER_TRIGGER, QUEUE_TRIGGER)
DEFAULT_APP = "function_app:app"


def _plain(value: Any) -> Any:
    """Enums (HttpMethod, AuthLevel…) as their values, recursively."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


@dataclass(frozen=True)
class FunctionInfo:
    """One registered function: its name, trigger binding (as function.json would hold it) and callable."""

    name: str
    trigger: dict[str, Any]
    bindings: tuple[dict[str, Any], ...]
    func: Callable[..., Any]

    @classmethod
    def from_function(cls, function: Any) -> FunctionInfo:
        trigger = function.get_trigger()
        trigger_dict = _plain(trigger.get_dict_repr()) if trigger is not None else {}
        bindings = tuple(_plain(binding.get_dict_repr()) for binding in function.get_bindings())
        return cls(function.get_function_name(), trigger_dict, bindings, function.get_user_function())

    @property
    def trigger_type(self) -> str:
        return str(self.trigger.get("type", ""))

    @property
    def arg_name(self) -> str:
        return str(self.trigger["name"])

    @property
    def route(self) -> str:
        return str(self.trigger.get("route") or self.name)

    @property
    def methods(self) -> list[str] | None:
        methods = self.trigger.get("methods")
        return [str(method).upper() for method in methods] if methods else None

    @property
    def auth_level(self) -> str | None:
        level = self.trigger.get("authLevel")
        return str(level) if level is not None else None

    @property
    def schedule(self) -> str:
        return str(self.trigger.get("schedule", ""))

    @property
    def run_on_startup(self) -> bool:
        return bool(self.trigger.get("runOnStartup", False))

    @property
    def queue_name(self) -> str:
        return str(self.trigger.get("queueName", ""))

    @property
    def connection(self) -> str:
        return str(self.trigger.get("connection") or "AzureWebJobsStorage")

    def output_bindings(self, binding_type: str) -> list[dict[str, Any]]:
        """Bindings of one non-trigger type, e.g. ``queue`` for queue outputs."""
        return [binding for binding in self.bindings if binding.get("type") == binding_type]

    def describe(self) -> str:
        """A one-line description of the trigger, for listings."""
        kind = self.trigger_type
        if kind == HTTP_TRIGGER:
            return f"[{','.join(self.methods or ['ANY'])}] {self.route}"
        if kind == TIMER_TRIGGER:
            startup = ", runOnStartup" if self.run_on_startup else ""
            return f"timerTrigger schedule '{self.schedule}'{startup}"
        if kind == QUEUE_TRIGGER:
            return f"queueTrigger queue '{self.queue_name}' (connection {self.connection})"
        return f"{kind} (not supported by devhost)"


@dataclass(frozen=True)
class LoadedApp:
    app: Any
    module: ModuleType
    functions: tuple[FunctionInfo, ...]
    added_path: str | None = None
    added_module: str | None = None

    def unload(self) -> None:
        """Undo what loading changed in this process (``sys.path`` entry, ``sys.modules`` entry).

        An embedded host (tests) calls this so that a later ``import function_app`` finds the project's
        own module rather than the app this host served.
        """
        if self.added_path is not None and self.added_path in sys.path:
            sys.path.remove(self.added_path)
        if self.added_module is not None and sys.modules.get(self.added_module) is self.module:
            del sys.modules[self.added_module]

    def find(self, name: str) -> FunctionInfo | None:
        """Function names are case-insensitive, as they are to the Functions host."""
        wanted = name.lower()
        return next((function for function in self.functions if function.name.lower() == wanted), None)

    def of_type(self, trigger_type: str) -> list[FunctionInfo]:
        return [function for function in self.functions if function.trigger_type == trigger_type]


def parse_app_reference(reference: str) -> tuple[str, str]:
    module, _, attribute = reference.partition(":")
    if not module or not attribute:
        raise ValueError(f"app reference '{reference}' must look like MODULE:ATTRIBUTE, e.g. {DEFAULT_APP}")
    return module, attribute


def load_app(app_dir: Path, reference: str = DEFAULT_APP) -> LoadedApp:
    """Import ``MODULE:ATTRIBUTE`` from ``app_dir`` (put first on ``sys.path``, as the Python worker does)."""
    module_name, attribute = parse_app_reference(reference)
    app_dir = app_dir.resolve()
    directory = str(app_dir)
    added_path = None
    if directory not in sys.path:
        sys.path.insert(0, directory)
        added_path = directory
    known = set(sys.modules)
    try:
        module = _import(app_dir, module_name)
        try:
            app = getattr(module, attribute)
        except AttributeError as error:
            raise ValueError(f"module '{module_name}' ({module.__file__}) has no attribute '{attribute}'") from error
        if not hasattr(app, "get_functions"):
            raise ValueError(f"'{reference}' is not a FunctionApp (it has no get_functions())")
        functions = tuple(FunctionInfo.from_function(function) for function in app.get_functions())
    except BaseException:
        if added_path is not None and added_path in sys.path:
            sys.path.remove(added_path)
        for name in set(sys.modules) - known:
            if name == module_name or name.startswith("_devhost_app_"):
                del sys.modules[name]
        raise
    added_module = module.__name__ if module.__name__ not in known else None
    return LoadedApp(app, module, functions, added_path, added_module)


def _import(app_dir: Path, module_name: str) -> ModuleType:
    """Import the app module, without reusing a same-named module that came from another directory."""
    relative = Path(*module_name.split("."))
    candidates = [app_dir / relative.with_suffix(".py"), app_dir / relative / "__init__.py"]
    source = next((path for path in candidates if path.is_file()), None)
    existing = sys.modules.get(module_name)
    if source is None:
        return importlib.import_module(module_name)
    if existing is not None and getattr(existing, "__file__", None) and Path(existing.__file__).resolve() == source:
        return existing
    if existing is None:
        return importlib.import_module(module_name)
    # Another module of that name is already imported (e.g. the project's own function_app in a test
    # process): load this one under a private name so neither shadows the other.
    alias = f"_devhost_app_{hashlib.sha1(str(source).encode()).hexdigest()[:12]}_{module_name.replace('.', '_')}"  # noqa: S324
    if alias in sys.modules:
        return sys.modules[alias]
    spec = importlib.util.spec_from_file_location(alias, source)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {source}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[alias] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[alias]
        raise
    return module
