"""One2many / many2many command tuples, applied generically to any relational field.

``[0, 0, vals]`` create, ``[1, id, vals]`` update, ``[2, id, 0]`` delete, ``[3, id, 0]`` unlink,
``[4, id, 0]`` link, ``[5, 0, 0]`` clear, ``[6, 0, ids]`` set (odoo/fields.py ``Command``). A bare
list of ids means "set", as Odoo also accepts. For a one2many the link lives on the comodel's
inverse many2one; unlinking a line whose inverse is required deletes it.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import MissingError
from .fields import Field

if TYPE_CHECKING:
    from .orm import BaseModel, Env


def as_ids(ids: Any) -> list[int]:
    """Record ids as Odoo's ``browse`` takes them: one id or a list of ids."""
    if type(ids) is int:
        return [ids]
    if ids is False or ids is None:
        return []
    if not isinstance(ids, (list, tuple)):
        raise ValueError(f"Invalid record ids: {ids!r}")  # noqa: TRY004 - Odoo reports ValueError
    for i in ids:
        if type(i) is not int:
            raise ValueError(f'invalid input syntax for type integer: "{i}"')
    return list(ids)


def apply_x2many(model: BaseModel, env: Env, rid: int, f: Field, commands: Any) -> None:
    """Apply one2many/many2many command tuples (or a bare id list) to field ``f`` of record ``rid``."""
    if not isinstance(commands, (list, tuple)):
        raise ValueError(f"Wrong value for {f}: {commands!r}")  # noqa: TRY004 - Odoo reports ValueError
    comodel = model.registry.models[f.relation or ""]
    if f.type == "many2many":
        current = list(model.records[rid].get(f.name) or ())
        new = _apply_m2m_commands(env, comodel, f, current, commands)
        if new != current:
            model._update(env, rid, {f.name: new})
        return
    inverse = f.inverse_name or ""
    inverse_required = comodel.fields[inverse].required
    comodel.ensure_index(inverse)

    def detach(cid: int) -> None:
        if inverse_required:
            comodel.unlink_records(env, [cid])
        else:
            comodel.write_records(env, [cid], {inverse: False})

    accept = f.o2m_domain
    for cmd in _normalise_commands(f, commands):
        code = cmd[0]
        linked = set(comodel._hash[inverse].get(rid, ()))
        if accept is not None:
            linked = {cid for cid in linked if accept(comodel.records[cid])}
        if code == 0:
            comodel.create_records(env, [{**_cmd_vals(f, cmd, 2), inverse: rid}])
        elif code == 1:
            comodel.write_records(env, [_cmd_id(f, cmd)], _cmd_vals(f, cmd, 2))
        elif code == 2:
            comodel.unlink_records(env, [_cmd_id(f, cmd)])
        elif code == 3:
            cid = _cmd_id(f, cmd)
            if cid in linked:
                detach(cid)
        elif code == 4:
            comodel.write_records(env, [_cmd_id(f, cmd)], {inverse: rid})
        elif code == 5:
            for cid in sorted(linked):
                detach(cid)
        elif code == 6:
            wanted = as_ids(cmd[2] if len(cmd) > 2 else [])
            for cid in sorted(linked - set(wanted)):
                detach(cid)
            missing = [cid for cid in wanted if cid not in linked]
            if missing:
                comodel.write_records(env, missing, {inverse: rid})


def _normalise_commands(f: Field, commands: Any) -> list[list[Any]]:
    out: list[list[Any]] = []
    plain_ids = [c for c in commands if type(c) is int]
    if plain_ids and len(plain_ids) == len(commands):
        return [[6, 0, plain_ids]]  # a bare list of ids means "set"
    for cmd in commands:
        if type(cmd) is int:
            out.append([4, cmd])
        elif isinstance(cmd, (list, tuple)) and cmd and type(cmd[0]) is int and 0 <= cmd[0] <= 6:
            out.append(list(cmd))
        else:
            raise ValueError(f"Wrong value for {f}: {cmd!r}")
    return out


def _cmd_id(f: Field, cmd: list[Any]) -> int:
    if len(cmd) < 2 or type(cmd[1]) is not int:
        raise ValueError(f"Wrong value for {f}: {cmd!r}")
    return cmd[1]


def _cmd_vals(f: Field, cmd: list[Any], pos: int) -> dict[str, Any]:
    vals = cmd[pos] if len(cmd) > pos else None
    if not isinstance(vals, dict):
        raise ValueError(f"Wrong value for {f}: {cmd!r}")  # noqa: TRY004 - Odoo reports ValueError
    return vals


def _apply_m2m_commands(env: Env, comodel: BaseModel, f: Field, current: list[int],
                        commands: Any) -> list[int]:
    ids = list(current)
    for cmd in _normalise_commands(f, commands):
        code = cmd[0]
        if code == 0:
            ids.append(comodel.create_records(env, [_cmd_vals(f, cmd, 2)])[0])
        elif code == 1:
            comodel.write_records(env, [_cmd_id(f, cmd)], _cmd_vals(f, cmd, 2))
        elif code == 2:
            cid = _cmd_id(f, cmd)
            comodel.unlink_records(env, [cid])
            ids = [i for i in ids if i != cid]
        elif code == 3:
            cid = _cmd_id(f, cmd)
            ids = [i for i in ids if i != cid]
        elif code == 4:
            cid = _cmd_id(f, cmd)
            if cid not in comodel.records:
                raise MissingError("Record does not exist or has been deleted.\n"
                                   f"(Record: {comodel._name}({cid},), User: {env.uid})")
            if cid not in ids:
                ids.append(cid)
        elif code == 5:
            ids = []
        elif code == 6:
            wanted = as_ids(cmd[2] if len(cmd) > 2 else [])
            missing = [i for i in wanted if i not in comodel.records]
            if missing:
                raise MissingError("Record does not exist or has been deleted.\n"
                                   f"(Record: {comodel._name}({missing[0]},), User: {env.uid})")
            ids = list(dict.fromkeys(wanted))
    return ids

