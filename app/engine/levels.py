"""Level-by-level execution of query operations over the schema Strawberry builds.

graphql-core's executor completes the response one field at a time: per field a ResolveInfo, a
Path, Strawberry's resolver wrapper and an awaitable check, and per async resolver a coroutine
and a task, so a page of ~1,400 objects costs tens of milliseconds. This executor keeps what
graphql-core decides (parsing, validation, variable and argument coercion, field collection with
fragments and @skip/@include, leaf serialisation, located errors) and changes how the tree is
walked:

- Field plans (collected fields, how each is resolved, its completion shape) are built once per
  operation, runtime type and selection, and reused by every request.
- Plain fields are read from the parent object; fields declared `each` are called per object.
  Both complete at once, depth first, as graphql-core completes synchronous fields.
- Relations declared `batch` (see `declare`) are deferred: all parents waiting for the same field
  are resolved with one call per level, then completed together, object by object.
- Any other resolver is called per object through graphql-core's own resolve function (with a
  real ResolveInfo), so every Strawberry wrapper, extension and permission still runs; its
  awaitables are awaited with the level.

Answers are graphql-core 3.3's: null propagation to the nearest nullable position, errors
dropped under a position already nulled (its `CollectedErrors`), errors in the order objects and
fields are completed. Whatever this module cannot reproduce exactly (an awaitable list item, an
abstract type that resolves to nothing valid, an object failing `is_type_of`) raises
`Unsupported`, and the caller runs the operation with the standard executor instead: a query
only reads, so running it again is safe.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from enum import EnumMeta
from inspect import isawaitable
from keyword import iskeyword
from typing import Any

import strawberry
from graphql import (
    DirectiveNode,
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLError,
    GraphQLField,
    GraphQLID,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLString,
    InlineFragmentNode,
    ListValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    Undefined,
    ValueNode,
    VariableNode,
    is_leaf_type,
    located_error,
)
from graphql.execution.collect_fields import (
    FieldDetails,
    FragmentDetails,
    collect_fields,
    collect_subfields,
)
from graphql.execution.executor import default_field_resolver, default_type_resolver
from graphql.execution.values import VariableValues, get_argument_values
from graphql.pyutils import Path, inspect, is_iterable
from graphql.type.definition import GraphQLResolveInfoHelpers
from strawberry.types.arguments import convert_arguments
from strawberry.types.field import StrawberryField

from app.engine.declare import BATCH, EACH


class Unsupported(Exception):
    """The operation needs something only the standard executor reproduces exactly."""


class _Bubble(Exception):
    """A null in a non-null position, travelling to the nearest nullable one."""

    __slots__ = ("error",)

    def __init__(self, error: GraphQLError) -> None:
        self.error = error


# How a field's value is found.
ATTR = 0  # a plain attribute of the parent (Strawberry field without resolver)
CALL = 1  # a synchronous method of the parent taking only `self`
EACH_ = 2  # declared `each`: fn(context, parent, **arguments)
BATCH_ = 3  # declared `batch`: one call for all parents of a level
RESOLVE = 4  # anything else: graphql-core's resolve function with a real ResolveInfo
TYPENAME = 5

# What its value completes to.
LEAF = 0
LIST = 1
OBJECT = 2
ABSTRACT = 3

# A position in the response: (parent position, container, key, nullable). The container is the
# dict or list holding the value at `key`; the chain of keys is the response path.
Slot = tuple[Any, Any, Any, bool] | None


class _Shape:
    __slots__ = ("kind", "nullable", "of", "serialize")

    def __init__(self, graphql_type: GraphQLOutputType) -> None:
        self.nullable = True
        if isinstance(graphql_type, GraphQLNonNull):
            self.nullable = False
            graphql_type = graphql_type.of_type
        self.serialize: Callable[[Any], Any] = _no_serializer
        self.of: Any = graphql_type
        if isinstance(graphql_type, GraphQLList):
            self.kind = LIST
            self.of = _Shape(graphql_type.of_type)
        elif is_leaf_type(graphql_type):
            self.kind = LEAF
            self.serialize = _serializer(graphql_type)
        elif isinstance(graphql_type, GraphQLObjectType):
            self.kind = OBJECT
        else:
            self.kind = ABSTRACT


def _no_serializer(value: Any) -> Any:  # pragma: no cover - only leaves serialise
    raise TypeError("not a leaf")


def _serializer(leaf: Any) -> Callable[[Any], Any]:
    """graphql-core's `complete_leaf_value`, with the common exact-type cases answered first."""
    coerce = leaf.coerce_output_value

    def checked(value: Any) -> Any:
        coerced = coerce(value)
        if coerced is Undefined or coerced is None:
            raise TypeError(
                f"Expected `{inspect(leaf)}.coerce_output_value({inspect(value)})` to return"
                f" non-nullable value, returned: {inspect(coerced)}"
            )
        return coerced

    if leaf is GraphQLString or leaf is GraphQLID:

        def text(value: Any) -> Any:
            return value if type(value) is str else checked(value)

        return text
    if leaf is GraphQLInt:

        def integer(value: Any) -> Any:
            if type(value) is int and -2147483648 <= value <= 2147483647:
                return value
            return checked(value)

        return integer
    if leaf is GraphQLBoolean:

        def boolean(value: Any) -> Any:
            return value if type(value) is bool else checked(value)

        return boolean
    members = _enum_names(leaf, coerce)
    if members:
        enum_class = type(next(iter(members)))

        def enum(value: Any) -> Any:
            if type(value) is enum_class:
                name = members.get(value)
                if name is not None:
                    return name
            return checked(value)

        return enum
    return checked


def _enum_names(leaf: Any, coerce: Callable[[Any], Any]) -> dict[Any, str]:
    """A Python enum's members and the names the leaf serialises them to, asked of the leaf
    itself once (Strawberry's enum type compares each member's value on every call)."""
    wrapped = getattr(leaf, "wrapped_cls", None)
    if not isinstance(leaf, GraphQLEnumType) or not isinstance(wrapped, EnumMeta):
        return {}
    names: dict[Any, str] = {}
    member: Any
    for member in wrapped.__members__.values():
        try:
            name = coerce(member)
        except Exception:
            continue  # left to the leaf, with its error, on every call
        if type(member) is wrapped and isinstance(name, str):
            names[member] = name
    return names


class _Field:
    """One response key of an object plan: how to resolve it and complete its value."""

    __slots__ = (
        "args",
        "attr",
        "definition",
        "details",
        "exact",
        "fn",
        "key",
        "kind",
        "kwargs",
        "name",
        "nodes",
        "object",
        "parent",
        "serialize",
        "shape",
        "static",
        "strawberry",
        "sub",
    )

    def __init__(self, key: str, details: list[FieldDetails], parent: GraphQLObjectType) -> None:
        self.key = key
        self.details = details
        self.nodes: list[FieldNode] = [d.node for d in details]
        self.name = self.nodes[0].name.value
        self.parent = parent
        self.sub: dict[GraphQLObjectType, _Object] = {}
        self.kind = RESOLVE
        self.attr = ""
        self.fn: Any = None
        self.strawberry: StrawberryField | None = None
        # Argument values, when they depend on no variable: computed once, kept with the plan.
        self.static = not any(
            d.fragment_variable_values is not None or _uses_variables(d.node) for d in details
        )
        self.args: dict[str, Any] | Exception | None = None
        self.kwargs: dict[str, Any] | Exception | None = None
        self.definition: GraphQLField
        self.shape: _Shape
        # Leaves: the serializer, and the Python type a String, ID or Boolean value passes
        # through unchanged (so the common case needs no call at all).
        self.serialize: Callable[[Any], Any] | None = None
        self.exact: type | None = None
        # An object (not list, not abstract) field: its one sub-plan, once built.
        self.object: _Object | None = None


class _Object:
    """The fields an object of one runtime type completes, for one selection."""

    __slots__ = ("fields", "fill", "is_type_of", "name", "origin", "type")

    def __init__(self, object_type: GraphQLObjectType, fields: list[_Field]) -> None:
        self.type = object_type
        self.name = object_type.name
        self.fields = fields
        self.is_type_of = object_type.is_type_of
        definition = (object_type.extensions or {}).get("strawberry-definition")
        if definition is not None and definition.is_type_of is not None:
            raise Unsupported("a type with its own is_type_of")  # it may need a ResolveInfo
        # Strawberry's is_type_of is true for an instance of the type's own class.
        self.origin: type | None = None if definition is None else definition.origin
        if definition is not None and definition.concrete_of is not None and not self.is_type_of:
            # A generic's specialisation (OrderConnection, OrderEdge) holds instances of the
            # generic class itself, which graphql-core takes unchecked (no is_type_of).
            self.origin = definition.concrete_of.origin
        self.fill: Fill = _compile_fill(self)


_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
_DEFERRED = object()  # a resolver's awaitable, completed with the next level

# fill(run, source, result, slot): complete an object's fields into `result`, in order.
Fill = Callable[["_Run", Any, dict[str, Any], Slot], None]


def _compile_fill(plan: _Object) -> Fill:
    """The object's `fill`, written out for its fields: what a loop over the fields would
    decide per field and per object (which kind, which attribute, which exact type) is decided
    here once, so completing a page's hundreds of objects runs straight-line code. Every value
    that is not the common case (an error, a null, a leaf needing its serializer, a list)
    goes to `_Run.finish`, the one general path."""
    names: dict[str, Any] = {
        "Bubble": _Bubble,
        "isawaitable": isawaitable,
        "DEFERRED": _DEFERRED,
        "TYPENAME_VALUE": plan.name,
    }
    lines = ["def fill(run, source, result, slot):"]
    add = lines.append
    if any(field.kind in (BATCH_, RESOLVE) for field in plan.fields):
        add("    defer = run.pending.append")
    if any(field.kind is EACH_ for field in plan.fields):
        add("    context = run.context")
    for index, field in enumerate(plan.fields):
        f, k = f"F{index}", f"K{index}"
        names[f], names[k] = field, field.key
        kind = field.kind
        if kind is TYPENAME:
            add(f"    result[{k}] = TYPENAME_VALUE")
            continue
        if kind is BATCH_:
            add(f"    result[{k}] = None")
            add(f"    defer(({f}, source, result, slot, None))")
            continue
        add("    try:")
        if kind is ATTR:
            attr = field.attr
            if attr.isidentifier() and not iskeyword(attr) and not attr.startswith("__"):
                add(f"        value = source.{attr}")
            else:
                names[f"A{index}"] = attr
                add(f"        value = getattr(source, A{index})")
        elif kind is EACH_:
            add(f"        value = {f}.fn(context, source, **run.python_arguments({f}))")
        elif kind is CALL:
            add(f"        value = {f}.fn(source)")
        else:
            add(f"        value = {f}.fn(source, run.info({f}, slot), **run.arguments({f}))")
        add("    except Exception as error:")
        add("        value = error")
        if kind is RESOLVE:
            add("    else:")
            add("        if isawaitable(value):")
            add(f"            result[{k}] = None")
            add(f"            defer(({f}, source, result, slot, value))")
            add("            value = DEFERRED")
            add("    if value is DEFERRED:")
            add("        pass")
            branch = "elif"
        else:
            branch = "if"
        leaf = field.shape.of if field.serialize is not None else None
        if leaf is GraphQLInt:
            add(f"    {branch} type(value) is int and {_INT_MIN} <= value <= {_INT_MAX}:")
            add(f"        result[{k}] = value")
            branch = "elif"
        elif field.exact is not None:
            add(f"    {branch} type(value) is {f}.exact:")
            add(f"        result[{k}] = value")
            branch = "elif"
        shape = field.shape
        if field.serialize is None and shape.kind is OBJECT:
            # An object of the expected class: straight to its fields.
            add(f"    {branch} {f}.object is not None and type(value) is {f}.object.origin:")
            add("        child = {}")
            add(f"        result[{k}] = child")
            add(f"        position = (slot, result, {k}, {shape.nullable})")
            if shape.nullable:
                add("        try:")
                add(f"            {f}.object.fill(run, value, child, position)")
                add("        except Bubble as bubble:")
                add(f"            result[{k}] = None")
                add("            run.record(bubble.error, slot, position)")
            else:
                add(f"        {f}.object.fill(run, value, child, position)")
            branch = "elif"
        if branch == "if":
            add(f"    run.finish({f}, value, result, slot)")
        else:
            add("    else:")
            add(f"        run.finish({f}, value, result, slot)")
    add("    return None")
    exec(compile("\n".join(lines), f"<fill {plan.name}>", "exec"), names)
    fill: Fill = names["fill"]
    return fill


def _itself(value: Any) -> Any:
    return value


def _uses_variables(node: FieldNode) -> bool:
    return any(_value_uses_variables(argument.value) for argument in node.arguments or ())


def _value_uses_variables(value: ValueNode) -> bool:
    if isinstance(value, VariableNode):
        return True
    if isinstance(value, ListValueNode):
        return any(_value_uses_variables(v) for v in value.values)
    if isinstance(value, ObjectValueNode):
        return any(_value_uses_variables(f.value) for f in value.fields)
    return False


def _directive_variables(
    selection_sets: Iterable[SelectionSetNode],
) -> tuple[str, ...]:
    """Variables that @skip/@include read: field collection (so the plans) depends on them."""
    names: list[str] = []

    def directives(found: Iterable[DirectiveNode]) -> None:
        for directive in found:
            if directive.name.value in ("skip", "include"):
                for argument in directive.arguments or ():
                    if isinstance(argument.value, VariableNode):
                        names.append(argument.value.name.value)

    def walk(selection_set: SelectionSetNode | None) -> None:
        if selection_set is None:
            return
        for selection in selection_set.selections:
            directives(selection.directives or ())
            if isinstance(selection, FieldNode | InlineFragmentNode):
                walk(selection.selection_set)

    for selection_set in selection_sets:
        walk(selection_set)
    return tuple(dict.fromkeys(names))


class _Operation:
    """What one operation of a cached document needs, built on its first execution."""

    __slots__ = ("definitions", "directive_variables", "fragments", "operation", "roots")

    def __init__(self, document: DocumentNode, operation: OperationDefinitionNode) -> None:
        self.operation = operation
        self.definitions: dict[str, FragmentDefinitionNode] = {}
        self.fragments: dict[str, FragmentDetails] = {}
        for definition in document.definitions:
            if isinstance(definition, FragmentDefinitionNode):
                if definition.variable_definitions:
                    raise Unsupported("fragment variables")
                self.definitions[definition.name.value] = definition
                self.fragments[definition.name.value] = FragmentDetails(definition, None)
        self.directive_variables = _directive_variables(
            [operation.selection_set, *(d.selection_set for d in self.definitions.values())]
        )
        self.roots: dict[tuple[Any, ...], _Object] = {}


# What `LevelExecutor.plan` hands out: opaque to callers.
OperationPlan = _Operation


class LevelExecutor:
    """Executes query operations (and subscription events) of one Strawberry schema."""

    def __init__(self, schema: strawberry.Schema, cache_size: int = 512) -> None:
        self.schema = schema
        self.graphql_schema = schema._schema
        self.config = schema.config
        self.scalar_registry = schema.schema_converter.scalar_registry
        # Fields with exception handlers must go through Strawberry's wrapper to get them.
        self.wrapped_only = bool(getattr(schema.schema_converter, "_exception_handler_specs", None))
        self.plain_attributes = self.config.default_resolver is getattr
        self._operations: OrderedDict[int, _Operation] = OrderedDict()
        self._cache_size = cache_size

    # --- plans -------------------------------------------------------------------------------

    def plan(self, document: DocumentNode, operation: OperationDefinitionNode) -> OperationPlan:
        """An operation's plan for a caller that executes it for as long as it lives (a
        subscription's group, once per event): held by the caller rather than by the bounded
        cache, so thousands of live subscriptions neither evict each other's plans (rebuilding,
        and recompiling, one on every event) nor the queries'."""
        return _Operation(document, operation)

    def _operation(self, document: DocumentNode, operation: OperationDefinitionNode) -> _Operation:
        key = id(operation)
        cached = self._operations.get(key)
        if cached is not None and cached.operation is operation:
            self._operations.move_to_end(key)
            return cached
        prepared = _Operation(document, operation)
        # The entry holds the operation, so its id cannot be reused while it is cached.
        self._operations[key] = prepared
        if len(self._operations) > self._cache_size:
            self._operations.popitem(last=False)
        return prepared

    def _root(
        self, op: _Operation, root_type: GraphQLObjectType, variables: VariableValues
    ) -> _Object:
        coerced = variables.coerced
        key = tuple(coerced.get(name) for name in op.directive_variables)
        plan = op.roots.get(key)
        if plan is None:
            collected = collect_fields(
                self.graphql_schema, op.fragments, variables, root_type, op.operation
            )
            plan = self._object(root_type, collected.grouped_field_set)
            op.roots[key] = plan
        return plan

    def _object(
        self, object_type: GraphQLObjectType, grouped: dict[str, list[FieldDetails]]
    ) -> _Object:
        fields = []
        for key, details in grouped.items():
            field = self._field(object_type, key, details)
            if field is not None:
                fields.append(field)
        return _Object(object_type, fields)

    def _field(
        self, parent: GraphQLObjectType, key: str, details: list[FieldDetails]
    ) -> _Field | None:
        plan = _Field(key, details, parent)
        name = plan.name
        if name == "__typename":
            plan.kind = TYPENAME
            return plan
        if name.startswith("__"):
            raise Unsupported("introspection")
        definition = parent.fields.get(name)
        if definition is None:
            return None  # graphql-core leaves out a field the type does not have
        plan.definition = definition
        plan.shape = shape = _Shape(definition.type)
        if shape.kind is LEAF:
            plan.serialize = shape.serialize
            leaf = shape.of
            if leaf is GraphQLString or leaf is GraphQLID:
                plan.exact = str
            elif leaf is GraphQLBoolean:
                plan.exact = bool
        field = (definition.extensions or {}).get("strawberry-definition")
        plan.fn = definition.resolve or default_field_resolver
        if not isinstance(field, StrawberryField):
            return plan
        plan.strawberry = field
        metadata: Any = field.metadata or {}
        if field.is_subscription:
            # Per event, Strawberry resolves a subscription's root field to the event's value
            # itself: no arguments to coerce nor ResolveInfo to build for each of thousands of
            # subscriptions (they were coerced, and authorized, when it subscribed).
            plan.kind, plan.fn = CALL, _itself
        elif BATCH in metadata:
            plan.kind, plan.fn = BATCH_, metadata[BATCH]
        elif EACH in metadata:
            plan.kind, plan.fn = EACH_, metadata[EACH]
        elif self.wrapped_only or field.extensions:
            pass
        elif field.base_resolver is None:
            if self.plain_attributes:
                plan.kind, plan.attr = ATTR, field.python_name
        else:
            resolver = field.base_resolver
            if (
                not resolver.is_async
                and not resolver.arguments
                and resolver.info_parameter is None
                and resolver.root_parameter is None
                and resolver.self_parameter is not None
                and len(resolver.signature.parameters) == 1
            ):
                plan.kind, plan.fn = CALL, resolver.wrapped_func
        return plan

    def _sub(self, field: _Field, object_type: GraphQLObjectType, run: _Run) -> _Object:
        collected = collect_subfields(
            self.graphql_schema,
            run.op.fragments,
            run.variables,
            run.op.operation,
            object_type,
            field.details,
        )
        plan = self._object(object_type, collected.grouped_field_set)
        field.sub[object_type] = plan
        if field.shape.kind is OBJECT:
            field.object = plan
        return plan

    # --- entry point ---------------------------------------------------------------------------

    async def execute(
        self,
        document: DocumentNode,
        operation: OperationDefinitionNode,
        variables: VariableValues,
        context: Any,
    ) -> ExecutionResult:
        """Execute a query operation.

        Raises `Unsupported` for what only the standard executor reproduces exactly.
        """
        [result] = await self.execute_many(document, operation, variables, context, [None])
        return result

    async def execute_many(
        self,
        document: DocumentNode,
        operation: OperationDefinitionNode,
        variables: VariableValues,
        context: Any,
        root_values: Sequence[Any],
        plan: OperationPlan | None = None,
    ) -> list[ExecutionResult]:
        """Execute the operation once per root value, all of them level by level together: a
        batch field is resolved with one call for the parents of every execution, so a batch
        of subscription events (each root value an event's payload, as graphql-core executes
        each event) costs what one query over all of them would. Each answer is the one its
        execution alone gives.

        Raises `Unsupported` for what only the standard executor reproduces exactly.
        """
        root_type = self.graphql_schema.get_root_type(operation.operation)
        if root_type is None:
            raise Unsupported(f"no {operation.operation.value} type")
        op = plan if plan is not None else self._operation(document, operation)
        root = self._root(op, root_type, variables)
        runs = [_Run(self, op, variables, context, value) for value in root_values]
        for run in runs:
            run.start(root)
        while True:
            waiting = [run for run in runs if run.pending and not run.data_null]
            if not waiting:
                break
            await _Run.level(waiting)
        return [run.outcome() for run in runs]


# A deferred field of one execution: (field, parent value, parent's result dict, parent's slot,
# awaitable or None for a batch field).
_Job = tuple[_Field, Any, dict[str, Any], Slot, Any]


class _Run:
    """One execution: the response being built and the fields waiting for the next level."""

    __slots__ = (
        "args",
        "context",
        "data",
        "data_null",
        "errors",
        "executor",
        "helpers",
        "kwargs",
        "nulled",
        "op",
        "pending",
        "root_value",
        "variables",
    )

    def __init__(
        self,
        executor: LevelExecutor,
        op: _Operation,
        variables: VariableValues,
        context: Any,
        root_value: Any,
    ) -> None:
        self.executor = executor
        self.op = op
        self.variables = variables
        self.context = context
        self.root_value = root_value
        self.data: dict[str, Any] = {}
        self.errors: list[GraphQLError] = []
        # Positions nulled by an error (by id; the value keeps the slot, and so its id, alive).
        self.nulled: dict[int, Slot] = {}
        self.data_null = False
        # Deferred fields: (field, parent value, parent's result dict, parent's slot, awaitable).
        self.pending: list[tuple[_Field, Any, dict[str, Any], Slot, Any]] = []
        # Argument values that depend on variables, per field, for this execution.
        self.args: dict[int, dict[str, Any] | Exception] = {}
        self.kwargs: dict[int, dict[str, Any] | Exception] = {}
        self.helpers = GraphQLResolveInfoHelpers(_gather, _track)

    def start(self, root: _Object) -> None:
        """Complete the root fields that need no waiting; the rest wait for the levels."""
        try:
            root.fill(self, self.root_value, self.data, None)
        except _Bubble as bubble:
            self.record(bubble.error, None)
            self.data_null = True

    def outcome(self) -> ExecutionResult:
        errors = self.errors
        if errors:
            self.executor.schema.process_errors(errors)
        return ExecutionResult(None if self.data_null else self.data, errors or None)

    # --- errors and null propagation -------------------------------------------------------

    def under_nulled(self, slot: Slot) -> bool:
        if self.data_null:
            return True
        nulled = self.nulled
        while slot is not None:
            if id(slot) in nulled:
                return True
            slot = slot[0]
        return False

    def record(self, error: GraphQLError, parent: Slot, position: Slot = None) -> None:
        """Keep an error caught at a nullable position, unless an ancestor is already null."""
        if (self.nulled or self.data_null) and self.under_nulled(parent):
            return
        self.errors.append(error)
        if position is not None:
            self.nulled[id(position)] = position

    def bubble(self, error: GraphQLError, slot: Slot) -> None:
        """A deferred non-null field failed: null the nearest nullable position above it."""
        while slot is not None:
            parent, container, key, nullable = slot
            if nullable:
                if not self.under_nulled(slot):
                    container[key] = None
                    self.record(error, parent, slot)
                return
            slot = parent
        if not self.data_null:
            self.errors.append(error)
            self.data_null = True

    @staticmethod
    def path(slot: Slot, *more: Any) -> list[Any]:
        keys: list[Any] = []
        while slot is not None:
            keys.append(slot[2])
            slot = slot[0]
        keys.reverse()
        keys.extend(more)
        return keys

    # --- arguments ---------------------------------------------------------------------------

    def arguments(self, field: _Field) -> dict[str, Any]:
        """graphql-core's coerced argument values (an error raises, per object, as there)."""
        if field.static:
            found = field.args
            if found is None:
                found = field.args = self._coerce(field)
        else:
            found = self.args.get(id(field))
            if found is None:
                found = self.args[id(field)] = self._coerce(field)
        if isinstance(found, Exception):
            raise found
        return found

    def _coerce(self, field: _Field) -> dict[str, Any] | Exception:
        definition = field.definition
        first = field.details[0]
        if not definition.args and not first.node.arguments:
            return {}
        try:
            return get_argument_values(
                definition, first.node, self.variables, first.fragment_variable_values
            )
        except Exception as error:
            return error

    def python_arguments(self, field: _Field) -> dict[str, Any]:
        """The arguments as Strawberry hands them to a resolver (Python names and types)."""
        if field.static:
            found = field.kwargs
            if found is None:
                found = field.kwargs = self._convert(field)
        else:
            found = self.kwargs.get(id(field))
            if found is None:
                found = self.kwargs[id(field)] = self._convert(field)
        if isinstance(found, Exception):
            raise found
        return found

    def _convert(self, field: _Field) -> dict[str, Any] | Exception:
        try:
            args = self.arguments(field)
            assert field.strawberry is not None
            executor = self.executor
            return convert_arguments(
                args,
                field.strawberry.arguments,
                scalar_registry=executor.scalar_registry,
                config=executor.config,
            )
        except Exception as error:
            return error

    def info(self, field: _Field, slot: Slot) -> GraphQLResolveInfo[Any]:
        """A real ResolveInfo for resolvers this module does not call itself."""
        path = None
        for key in self.path(slot, field.key):
            path = Path(path, key, None)
        assert path is not None
        op = self.op
        return GraphQLResolveInfo(
            field.name,
            field.nodes,
            field.definition.type,
            field.parent,
            path,
            self.executor.graphql_schema,
            op.definitions,
            self.root_value,
            op.operation,
            self.variables,
            self.context,
            isawaitable,  # type: ignore[arg-type]
            None,
            self.helpers,
        )

    # --- completion --------------------------------------------------------------------------

    def finish(self, field: _Field, value: Any, result: dict[str, Any], slot: Slot) -> None:
        """Complete a field's value (or its resolver's error) that an object's compiled `fill`
        did not settle itself."""
        serialize = field.serialize
        if serialize is not None:
            if value is not None and not isinstance(value, Exception):
                try:
                    result[field.key] = serialize(value)
                    return
                except Exception:
                    pass  # reported by complete_field
        else:
            sub = field.object
            if sub is not None and type(value) is sub.origin:
                # An object of the expected class: straight to its fields.
                child: dict[str, Any] = {}
                result[field.key] = child
                nullable = field.shape.nullable
                position = (slot, result, field.key, nullable)
                try:
                    sub.fill(self, value, child, position)
                except _Bubble as bubble:
                    if not nullable:
                        raise
                    result[field.key] = None
                    self.record(bubble.error, slot, position)
                return
        result[field.key] = self.complete_field(field, value, result, slot)

    def complete_field(self, field: _Field, value: Any, result: dict[str, Any], slot: Slot) -> Any:
        shape = field.shape
        position: Slot = None
        try:
            if isinstance(value, Exception):
                raise value
            if value is None or value is Undefined:
                if shape.nullable:
                    return None
                raise TypeError(
                    f"Cannot return null for non-nullable field {field.parent.name}.{field.name}."
                )
            if shape.kind is LEAF:
                return shape.serialize(value)
            position = (slot, result, field.key, shape.nullable)
            return self.complete(field, shape, value, position)
        except _Bubble as bubble:
            if not shape.nullable:
                raise
            self.record(bubble.error, slot, position)
            return None
        except Exception as raw:
            error = located_error(raw, field.nodes, self.path(slot, field.key))
            if not shape.nullable:
                raise _Bubble(error) from None
            self.record(error, slot, position)
            return None

    def complete(self, field: _Field, shape: _Shape, value: Any, position: Slot) -> Any:
        """A non-null, non-leaf value at `position`."""
        kind = shape.kind
        if kind is OBJECT:
            return self.complete_object(field, shape.of, value, position)
        if kind is LIST:
            return self.complete_list(field, shape.of, value, position)
        return self.abstract(field, shape.of, value, position)

    def complete_list(self, field: _Field, item: _Shape, value: Any, position: Slot) -> list[Any]:
        if type(value) is not list and not is_iterable(value):
            raise Unsupported("a list field returned no iterable")
        out: list[Any] = []
        append = out.append
        nullable = item.nullable
        leaf = item.kind is LEAF
        serialize = item.serialize
        plan = None
        if item.kind is OBJECT:
            plan = field.sub.get(item.of) or self.executor._sub(field, item.of, self)
        origin = None if plan is None else plan.origin
        for index, entry in enumerate(value):
            if leaf and entry is not None and not isinstance(entry, Exception):
                try:
                    append(serialize(entry))
                    continue
                except Exception:
                    if isawaitable(entry):
                        raise Unsupported("an awaitable list item") from None
            elif type(entry) is origin:
                # An object of the expected class: straight to its fields.
                assert plan is not None
                entry_position = (position, out, index, nullable)
                child: dict[str, Any] = {}
                try:
                    plan.fill(self, entry, child, entry_position)
                except _Bubble as bubble:
                    if not nullable:
                        raise
                    append(None)
                    self.record(bubble.error, position, entry_position)
                else:
                    append(child)
                continue
            entry_position = (position, out, index, nullable)
            try:
                if isinstance(entry, Exception):
                    raise entry
                if entry is None or entry is Undefined:
                    if not nullable:
                        raise TypeError(
                            "Cannot return null for non-nullable field"
                            f" {field.parent.name}.{field.name}."
                        )
                    append(None)
                elif leaf:
                    append(serialize(entry))
                else:
                    append(self.complete(field, item, entry, entry_position))
            except _Bubble as bubble:
                if not nullable:
                    raise
                append(None)
                self.record(bubble.error, position, entry_position)
            except Exception as raw:
                error = located_error(raw, field.nodes, self.path(entry_position))
                if not nullable:
                    raise _Bubble(error) from None
                append(None)
                self.record(error, position, entry_position)
        return out

    def complete_object(
        self, field: _Field, object_type: GraphQLObjectType, value: Any, position: Slot
    ) -> dict[str, Any]:
        plan = field.sub.get(object_type)
        if plan is None:
            plan = self.executor._sub(field, object_type, self)
        if type(value) is not plan.origin:
            if isawaitable(value):
                raise Unsupported("an awaitable value")
            is_type_of = plan.is_type_of
            # Strawberry's own check ignores its info argument (own checks are Unsupported).
            if is_type_of is not None and is_type_of(value, None) is not True:  # type: ignore[arg-type]
                raise Unsupported("is_type_of refused a value")
        result: dict[str, Any] = {}
        plan.fill(self, value, result, position)
        return result

    def abstract(self, field: _Field, abstract: Any, value: Any, position: Slot) -> Any:
        slot = position
        while slot is not None and not isinstance(slot[1], dict):
            slot = slot[0]  # the field's own position, whose path the ResolveInfo carries
        assert slot is not None
        resolve_type = abstract.resolve_type or default_type_resolver
        name = resolve_type(value, self.info(field, slot[0]), abstract)
        schema = self.executor.graphql_schema
        runtime = schema.get_type(name) if isinstance(name, str) else None
        if not isinstance(runtime, GraphQLObjectType) or not schema.is_sub_type(abstract, runtime):
            raise Unsupported("an abstract type resolved to no possible type")
        return self.complete_object(field, runtime, value, position)

    # --- levels ------------------------------------------------------------------------------

    @staticmethod
    async def level(runs: Sequence[_Run]) -> None:
        """Resolve every deferred field of the runs (one call per batch field for the parents
        of every run, other resolvers awaited together), then complete them in the order
        graphql-core would, run by run: first what was settled before anything waited (a batch
        function's per-parent errors, resolvers that finished at once), in the order deferred;
        then the rest as their resolvers finished."""
        jobs: list[_Job] = []
        owners: list[_Run] = []
        for run in runs:
            pending = run.pending
            run.pending = []
            if run.nulled:
                pending = [job for job in pending if not run.under_nulled(job[3])]
            jobs.extend(pending)
            owners.extend([run] * len(pending))
        values: list[Any] = [None] * len(jobs)
        # Per job: the index of the awaitable it waits for (-1: settled without one).
        waits_for = [-1] * len(jobs)
        batches: dict[_Field, list[int]] = {}
        waits: list[Awaitable[Any]] = []
        targets: list[int | tuple[_Field, list[int]]] = []
        for index, job in enumerate(jobs):
            if job[4] is None:
                group = batches.get(job[0])
                if group is None:
                    group = batches[job[0]] = []
                group.append(index)
        # Awaitables in the order of their first job, as graphql-core starts resolvers: the
        # order their first steps run in, so the order of what they settle at once.
        for index, job in enumerate(jobs):
            awaitable = job[4]
            if awaitable is not None:
                waits_for[index] = len(waits)
                waits.append(awaitable)
                targets.append(index)
                continue
            field = job[0]
            group = batches[field]
            if group[0] != index:
                continue
            # The runs share the document, variables and context: their arguments are the same.
            first = owners[index]
            try:
                parents = [jobs[member][1] for member in group]
                awaitable = field.fn(first.context, parents, **first.python_arguments(field))
            except Exception as error:
                for member in group:
                    values[member] = error
                continue
            for member in group:
                waits_for[member] = len(waits)
            waits.append(awaitable)
            targets.append((field, group))
        # Jobs a batch function answered with their own error: a parent's error is settled
        # before anything waits (an authorization refused, an argument rejected), as its
        # resolver raises before its first load.
        early: set[int] = set()
        # Per awaitable: when it finished (0: within its first step, before anything waited).
        finished: list[int | None] = [None] * len(waits)
        if len(waits) == 1:
            try:
                outcomes: Sequence[Any] = [await waits[0]]
            except Exception as error:
                outcomes = [error]
            finished[0] = 1
        elif waits:
            tasks = [asyncio.ensure_future(awaitable) for awaitable in waits]
            order = 1

            def done(index: int) -> Callable[[Any], None]:
                def mark(_: Any) -> None:
                    nonlocal order
                    if finished[index] is None:
                        order += 1
                        finished[index] = order

                return mark

            for index, task in enumerate(tasks):
                task.add_done_callback(done(index))
            await asyncio.sleep(0)  # every task takes its first step
            for index, task in enumerate(tasks):
                if task.done():
                    finished[index] = 0
            outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        for target, outcome in zip(targets, outcomes, strict=True):
            if isinstance(outcome, BaseException) and not isinstance(outcome, Exception):
                raise outcome
            if isinstance(target, int):
                values[target] = outcome
                continue
            field, group = target
            if not isinstance(outcome, Exception) and len(outcome) != len(group):
                outcome = RuntimeError(
                    f"the batch resolver of {field.parent.name}.{field.name} returned "
                    f"{len(outcome)} values for {len(group)} parents"
                )
            if isinstance(outcome, Exception):
                # The batch function failed as a whole: as each parent's resolver would have,
                # when it finished (before anything waited, or after its loads).
                for index in group:
                    values[index] = outcome
            else:
                for index, found in zip(group, outcome, strict=True):
                    values[index] = found
                    if isinstance(found, Exception):
                        early.add(index)

        def rank(index: int) -> int:
            if waits_for[index] < 0 or index in early:
                return 0
            return finished[waits_for[index]] or 0

        if len(waits) > 1 or any(isinstance(value, Exception) for value in values):
            ranks = [rank(index) for index in range(len(jobs))]
            ranked: Iterable[int] = sorted(range(len(jobs)), key=ranks.__getitem__)
        else:  # one batch call or resolver, nothing failed: the order they were deferred in
            ranks = [0] * len(jobs)
            ranked = range(len(jobs))
        # A null that must propagate reaches its nullable ancestor only after the values that
        # settled together with it are completed (in graphql-core it crosses task boundaries,
        # while those tasks record their own errors). Each run's own, in the order they came.
        bubbles: list[tuple[_Run, GraphQLError, Slot]] = []
        current = 0
        for index in ranked:
            if ranks[index] != current:
                current = ranks[index]
                _Run.land(bubbles)
            run = owners[index]
            if run.data_null:
                continue
            field, _, result, slot, _ = jobs[index]
            if run.nulled and run.under_nulled(slot):
                continue
            try:
                run.finish(field, values[index], result, slot)
            except _Bubble as bubble:
                bubbles.append((run, bubble.error, slot))
        _Run.land(bubbles)

    @staticmethod
    def land(bubbles: list[tuple[_Run, GraphQLError, Slot]]) -> None:
        for run, error, slot in bubbles:
            run.bubble(error, slot)
        bubbles.clear()


async def _gather(awaitables: Sequence[Awaitable[Any]]) -> list[Any]:
    return list(await asyncio.gather(*awaitables))


_background: set[asyncio.Future[Any]] = set()


def _track(values: Sequence[Any]) -> None:
    awaitables = [value for value in values if isawaitable(value)]
    if awaitables:
        future = asyncio.gather(*awaitables, return_exceptions=True)
        _background.add(future)
        future.add_done_callback(_background.discard)
