"""The RoboTarget wire mapping: every [S]/[C] name of docs/voyager-protocol.md §5–§8, in one place.

Both the client (``voyager/robotarget.py``, ``voyager/types.py``) and the simulator import these
tables, so an operator holding the licensed vendor documentation corrects a name here once.
Left side of every mapping: our snake_case name; right side: the name on the wire.

Units [C]: epoch timestamps are integer seconds (0 = none / still running); RA is hours 0–24;
Dec, altitude, PA are degrees; hour angles are hours; exposures are seconds.
"""

from __future__ import annotations

from typing import Any

# ---------------------------------------------------------------- §5 manager mode and MAC [S]

M_MANAGER_MODE = "RemoteSetRoboTargetManagerMode"
P_MAC_KEY = "MACKey"
P_HASH = "Hash"
P_MAC = "MAC"
P_UID = "UID"
#: ParamRet key and success value of every RoboTarget command [C].
RET = "ret"
RET_DONE = "DONE"
RET_MAC_ERROR = "ERROR : MAC Error"
#: [C] ``ret`` of an Add… whose GUID is already stored (lets a retried add be recognised).
RET_DUPLICATE = "ERROR : Guid already exists"
#: [C] ``ret`` of a command naming a GUID that is not stored.
RET_NOT_FOUND = "ERROR : Guid not found"
#: [C] ``ret`` prefix of any other failure: ``"ERROR : <reason>"``.
RET_ERROR_PREFIX = "ERROR : "
#: ParamRet key of list-returning commands.
LIST = "list"

# ---------------------------------------------------------------- §7 method names [S]

M_ADD_SET = "RemoteRoboTargetAddSet"
#: [C] Set rename/retag and removal: the platform's names for them, parameters in §7.
M_UPDATE_SET = "RemoteRoboTargetUpdateSet"
M_REMOVE_SET = "RemoteRoboTargetRemoveSet"
M_ADD_TARGET = "RemoteRoboTargetAddTarget"
M_UPDATE_TARGET = "RemoteRoboTargetUpdateTarget"
M_REMOVE_TARGET = "RemoteRoboTargetRemoveTarget"
M_GET_TARGET = "RemoteRoboTargetGetTarget"
M_ADD_SHOT = "RemoteRoboTargetAddShot"
M_GET_SHOT = "RemoteRoboTargetGetShot"
M_GET_RUN_LIST = "RemoteRoboTargetGetRunList"
M_GET_SESSIONS_BY_RUN = "RemoteRoboTargetGetSessionListByRun"
M_GET_SHOTS_DONE = "RemoteRoboTargetGetShotDoneBySessionList"
M_GET_SHOT_JPG = "RemoteRoboTargetGetShotJpg"
M_ABORT = "RemoteRoboTargetAbort"
M_ENABLE_DISABLE = "RemoteRoboTargetEnableDisableObject"

#: Every RoboTarget method: each carries a MAC and needs ``ret == "DONE"`` to succeed.
ROBOTARGET_METHODS = frozenset(
    {
        M_ADD_SET,
        M_UPDATE_SET,
        M_REMOVE_SET,
        M_ADD_TARGET,
        M_UPDATE_TARGET,
        M_REMOVE_TARGET,
        M_GET_TARGET,
        M_ADD_SHOT,
        M_GET_SHOT,
        M_GET_RUN_LIST,
        M_GET_SESSIONS_BY_RUN,
        M_GET_SHOTS_DONE,
        M_GET_SHOT_JPG,
        M_ABORT,
        M_ENABLE_DISABLE,
    }
)


#: What the names of the commands that carry a ``MAC`` parameter start with (§5).
ROBOTARGET_PREFIX = "RemoteRoboTarget"


def needs_mac(method: str) -> bool:
    """True for the commands that carry a ``MAC`` parameter (§5)."""
    return method.startswith(ROBOTARGET_PREFIX)


# ---------------------------------------------------------------- §7 request parameters [S]

ADD_SET_PARAMS = {
    "guid": "Guid",
    "name": "Name",
    "profile_name": "ProfileName",
    "is_default": "IsDefault",
    "status": "Status",  # 0 enabled, 1 disabled
    "tag": "Tag",
    "note": "Note",
}
#: [C] ``RemoteRoboTargetUpdateSet``: the Set by GUID and the fields to change (unset = unchanged).
UPDATE_SET_PARAMS = {"set_guid": "RefGuidSet", "name": "Name", "tag": "Tag", "note": "Note"}
#: [C] ``RemoteRoboTargetRemoveSet``: the Set with its Targets and their Shots.
REMOVE_SET_PARAMS = {"set_guid": "RefGuidSet"}
UPDATE_TARGET_REF = "RefGuidTarget"
REMOVE_TARGET_PARAMS = {"target_guid": "RefGuidTarget"}
GET_TARGET_PARAMS = {"set_guid": "RefGuidSet"}  # "" = all sets
ADD_SHOT_PARAMS = {
    "guid": "GuidShot",
    "target_guid": "RefGuidTarget",
    "label": "Label",
    "filter_index": "FilterIndex",
    "num": "Num",
    "bin": "Bin",
    "readout_mode": "ReadoutMode",
    "type": "Type",  # 0 light
    "speed": "Speed",
    "gain": "Gain",
    "offset": "Offset",
    "exposure": "Exposure",  # seconds
    "order": "Order",
    "done": "Done",
    "enabled": "Enabled",
}
GET_SHOT_PARAMS = {"target_guid": "RefGuidTarget"}
GET_RUN_LIST_PARAMS = {"profile_name": "ProfileName", "days": "Days"}
GET_SESSIONS_BY_RUN_PARAMS = {"run_guid": "RefGuidRun"}
GET_SHOTS_DONE_PARAMS = {"session_guid": "RefGuidSession"}
GET_SHOT_JPG_PARAMS = {"shot_done_guid": "RefGuidShotDone", "fit_filename": "FITFileName"}
ABORT_PARAMS = {
    "target_guid": "RefGuidTarget",
    "set_guid": "RefGuidSet",
    "target_tag": "RefGuidTargetTag",
    "set_tag": "RefGuidSetTag",
}
ENABLE_DISABLE_PARAMS = {
    "object_guid": "RefGuidObject",
    "object_type": "ObjectType",  # OBJECT_SHOT / OBJECT_TARGET / OBJECT_SET
    "operation_type": "OperationType",  # 0 enable, 1 disable
}
OBJECT_SHOT, OBJECT_TARGET, OBJECT_SET = 0, 1, 2
OPERATION_ENABLE, OPERATION_DISABLE = 0, 1

# ---------------------------------------------------------------- §8 target parameters [S]

#: snake_case → wire name of the target fields the project sets itself.
TARGET_FIELDS = {
    "guid": "GuidTarget",
    "set_guid": "RefGuidSet",
    "base_sequence_guid": "RefGuidBaseSequence",
    "name": "TargetName",
    "tag": "Tag",
    "note": "Note",
    "date_creation": "DateCreation",  # epoch s
    "status": "Status",  # 0 enabled, 1 disabled
    "status_op": "StatusOp",
    "ra_j2000": "RAJ2000",  # hours 0 <= RA < 24 [C]
    "dec_j2000": "DECJ2000",  # degrees -90..90
    "pa": "PA",  # degrees
    "priority": "Priority",  # 0 very low .. 4 first
    "is_repeat": "IsRepeat",
    "repeat": "Repeat",  # nights
    "is_finish_actual_exposure": "IsFinishActualExposure",
    "is_cool_set_point": "IsCoolSetPoint",
    "cool_set_point": "CoolSetPoint",
    "is_wait_shot": "IsWaitShot",
    "wait_shot": "WaitShot",
    "is_guide_time": "IsGuideTime",
    "guide_time": "GuideTime",
    "c_mask": "C_Mask",
    "alt_min": "C_AltMin",  # degrees
    "sqm_min": "C_SqmMin",
    "ha_start": "C_HAStart",  # hours
    "ha_end": "C_HAEnd",  # hours
    "date_start": "C_DateStart",  # epoch s, 0 = none
    "date_end": "C_DateEnd",  # epoch s, 0 = none
    "time_start": "C_TimeStart",
    "time_end": "C_TimeEnd",
    "moon_down": "C_MoonDown",
    "moon_phase_min": "C_MoonPhaseMin",  # %
    "moon_phase_max": "C_MoonPhaseMax",  # %
    "moon_distance_degree": "C_MoonDistanceDegree",
    "hfd_mean_limit": "C_HFDMeanLimit",  # px, 0 = no limit
    "max_time_for_day": "C_MaxTimeForDay",
    "airmass_min": "C_AirmassMin",
    "airmass_max": "C_AirmassMax",
    "max_time": "C_MaxTime",
}

#: Every §8 wire field with its neutral default (docs/voyager-protocol.md §8); sent for the
#: fields a caller leaves unset so the request always carries the full §8 list.
TARGET_DEFAULTS: dict[str, Any] = {
    "GuidTarget": "",
    "RefGuidSet": "",
    "RefGuidBaseSequence": "",
    "TargetName": "",
    "Tag": "",
    "RAJ2000": 0.0,
    "DECJ2000": 0.0,
    "PA": 0.0,
    "DateCreation": 0,
    "Status": 0,
    "StatusOp": 0,
    "Note": "",
    "IsRepeat": True,
    "Repeat": 1,
    "Priority": 2,
    "IsFinishActualExposure": True,
    "IsCoolSetPoint": False,
    "CoolSetPoint": 0,
    "IsWaitShot": False,
    "WaitShot": 0,
    "IsGuideTime": False,
    "GuideTime": 0,
    "C_ID": "",
    "C_Mask": "BDE",
    "C_AltMin": 30.0,
    "C_SqmMin": 0,
    "C_HAStart": -3.0,
    "C_HAEnd": 3.0,
    "C_DateStart": 0,
    "C_DateEnd": 0,
    "C_TimeStart": 0,
    "C_TimeEnd": 0,
    "C_MoonDown": False,
    "C_MoonPhaseMin": 0,
    "C_MoonPhaseMax": 100,
    "C_MoonDistanceDegree": 0,
    "C_HFDMeanLimit": 0,
    "C_MaxTimeForDay": 0,
    "C_AirmassMin": 0,
    "C_AirmassMax": 0,
    "C_MoonDistanceLorentzian": 0,
    "C_MaxTime": 0,
    "C_OSDateStart": 0,
    "C_OSTimeStart": 0,
    "C_OSEarly": 0,
    "C_PINTEarly": 0,
    "C_PINTReset": False,
    "C_PINTIntervals": [],
    "C_Mask2": "",
    "C_L01": False,
    "C_M01": False,
    "C_N01": False,
    "C_S01": False,
    "Token": "",
    "TKey": "",
    "TName": "",
    "TType": 0,
    "IsDynamicPointingOverride": False,
    "DynamicPointingOverride": 0,
    "DynEachX_Seconds": 0,
    "DynEachX_Realign": False,
    "DynEachX_NoPlateSolve": False,
    "IsOffsetRF": False,
    "OffsetRF": 0,
}

#: ``C_Mask`` letters [S]; other letters are reserved and passed through as given.
C_MASK_ALT_MIN = "B"
C_MASK_HA_START = "D"
C_MASK_HA_END = "E"
C_MASK_MOON_DOWN = "K"

# ---------------------------------------------------------------- §7 returned shapes [C]/[S]

#: GetTarget ``list`` items.
TARGET_ITEM = {
    "guid": "guid",
    "name": "targetname",
    "set_guid": "refguidset",
    "status": "status",
    "priority": "priority",
    "ra_j2000": "raj2000",
    "dec_j2000": "decj2000",
}
#: GetShot ``list`` items (``done``: frames taken so far).
SHOT_ITEM = {
    "guid": "guid",
    "filter_index": "filterindex",
    "num": "num",
    "exposure": "exposure",
    "bin": "bin",
    "order": "order",
    "enabled": "enabled",
    "done": "done",
}
#: GetRunList ``list`` items; times are epoch s, ``datetimeend`` 0 while running.
RUN_ITEM = {"guid": "guid", "start": "datetimestart", "end": "datetimeend"}
#: GetSessionListByRun ``list`` items; ``result`` 0 running, 1 OK, 2 aborted, 3 error; ``progress`` 0–100.
SESSION_ITEM = {
    "guid": "guid",
    "ref_guid_target": "refguidtarget",
    "start": "datetimestart",
    "end": "datetimeend",
    "exit_text": "sessionexittext",
    "result": "result",
    "progress": "progress",
}
SESSION_RUNNING, SESSION_OK, SESSION_ABORTED, SESSION_ERROR = 0, 1, 2, 3
#: GetShotDoneBySessionList: ``ParamRet.list = {"done": [item, …]}``.
SHOTS_DONE_KEY = "done"
SHOT_DONE_ITEM = {
    "guid": "guid",
    "ref_guid_session": "refguidsession",
    "ref_guid_shot": "refguidshot",
    "filename": "filename",
    "path": "path",
    "filter_index": "filterindex",
    "exposure": "exposure",  # seconds
    "bin": "bin",
    "hfd": "hfd",  # px
    "star_index": "starindex",
    "min": "min",  # ADU
    "max": "max",
    "mean": "mean",
    "taken_at": "datetimeshot",  # epoch s, integer
    "is_deleted": "isdeleted",
}
#: GetShotJpg: the JPG in Base64.
JPG_DATA = "Base64Data"

# ---------------------------------------------------------------- §4 public command results [P]

STATUS_KEY = "VoyagerStatus"  # STOPPED, IDLE, RUN, ERRORE, UNDEFINED, WARNING
FILTER_NUM = "FilterNum"


def filter_name_key(number: int) -> str:
    """``Filter{n}_Name``: the filter configuration lists filters 1-based (FilterIndex = n − 1)."""
    return f"Filter{number}_Name"


PROFILE_ITEM = {"guid": "guid", "name": "name", "is_active": "isactive"}
DASHBOARD_IS_ON = "IsOn"

#: The fallback filter table, name → FilterIndex, when the filter configuration is unknown
#: (docs/voyager-protocol.md §8).
FILTER_FALLBACK = {"L": 0, "R": 1, "G": 2, "B": 3, "Ha": 4, "OIII": 5, "SII": 6}

# ---------------------------------------------------------------- helpers


def to_wire(mapping: dict[str, str], values: dict[str, Any]) -> dict[str, Any]:
    """Rename the keys of ``values`` present in ``mapping`` to their wire names (others dropped)."""
    return {mapping[k]: v for k, v in values.items() if k in mapping}


def from_wire(mapping: dict[str, str], item: dict[str, Any]) -> dict[str, Any]:
    """Rename a wire dict back to snake_case keys (wire keys absent from ``item`` are skipped)."""
    return {k: item[w] for k, w in mapping.items() if w in item}
