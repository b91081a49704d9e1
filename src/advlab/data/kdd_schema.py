"""The fixed schema of NSL-KDD and KDD Cup 1999 connection records.

Both data sets describe TCP/IP connection records with the same 41 features (Stolfo et al., KDD
Cup 1999; NSL-KDD by Tavallaee et al., "A Detailed Analysis of the KDD CUP 99 Data Set", CISDA
2009). This module holds what is fixed about them, independent of any particular file:

* the 41 feature names in file column order;
* the *fixed* vocabularies of the three categorical features, so the one-hot encoding never
  depends on which values a particular file happens to contain (``tftp_u`` occurs in KDDTest+
  but not in the 20 % training file);
* which numeric features are binary flags, ``*_rate`` fractions, heavy-tailed counts that get
  ``log1p``, plain integer counts, and constant;
* the standard mapping from attack name to the categories normal / DoS / Probe / R2L / U2R,
  including the 17 attacks that occur only in the test files, and the two label modes.

Why the numeric features are grouped as they are:

* Binary flags (:data:`BINARY_FEATURES`) and the 15 ``*_rate`` fractions (:data:`RATE_FEATURES`)
  have a known range [0, 1] and are kept as they are (min-max with the a-priori range instead
  of the training range). This matters for ``is_host_login``, which is constant 0 in the
  NSL-KDD 20 % training file and the KDD Cup 10 % file but 1 in some test rows: training
  statistics would erase it.
* Heavy-tailed features (:data:`LOG1P_FEATURES`) go through ``log1p`` before min-max. Their raw
  maxima are in the tens to billions while the bulk of the values is 0 or small, so a linear
  min-max would squash almost every record to ~0. The list is fixed (chosen from the documented
  value ranges of the KDD files), never derived from the data, so the encoding of a record does
  not depend on which file was loaded.
* The other integer counts (:data:`COUNT_FEATURES`: ``count``, ``srv_count``,
  ``dst_host_count``, ``wrong_fragment`` ...) are min-max scaled linearly, which keeps them on
  a uniform grid.
* ``num_outbound_cmds`` (:data:`CONSTANT_FEATURES`) is 0 in every record of every KDD file.
"""

from __future__ import annotations

from typing import Literal

LabelMode = Literal["binary", "5class"]

FEATURE_NAMES: tuple[str, ...] = (
    "duration", "protocol_type", "service", "flag", "src_bytes", "dst_bytes", "land",
    "wrong_fragment", "urgent", "hot", "num_failed_logins", "logged_in", "num_compromised",
    "root_shell", "su_attempted", "num_root", "num_file_creations", "num_shells",
    "num_access_files", "num_outbound_cmds", "is_host_login", "is_guest_login", "count",
    "srv_count", "serror_rate", "srv_serror_rate", "rerror_rate", "srv_rerror_rate",
    "same_srv_rate", "diff_srv_rate", "srv_diff_host_rate", "dst_host_count",
    "dst_host_srv_count", "dst_host_same_srv_rate", "dst_host_diff_srv_rate",
    "dst_host_same_src_port_rate", "dst_host_srv_diff_host_rate", "dst_host_serror_rate",
    "dst_host_srv_serror_rate", "dst_host_rerror_rate", "dst_host_srv_rerror_rate",
)
"""The 41 connection features, in file column order."""

PROTOCOLS: tuple[str, ...] = ("icmp", "tcp", "udp")
SERVICES: tuple[str, ...] = (
    "IRC", "X11", "Z39_50", "aol", "auth", "bgp", "courier", "csnet_ns", "ctf", "daytime",
    "discard", "domain", "domain_u", "echo", "eco_i", "ecr_i", "efs", "exec", "finger", "ftp",
    "ftp_data", "gopher", "harvest", "hostnames", "http", "http_2784", "http_443", "http_8001",
    "imap4", "iso_tsap", "klogin", "kshell", "ldap", "link", "login", "mtp", "name",
    "netbios_dgm", "netbios_ns", "netbios_ssn", "netstat", "nnsp", "nntp", "ntp_u", "other",
    "pm_dump", "pop_2", "pop_3", "printer", "private", "red_i", "remote_job", "rje", "shell",
    "smtp", "sql_net", "ssh", "sunrpc", "supdup", "systat", "telnet", "tftp_u", "tim_i", "time",
    "urh_i", "urp_i", "uucp", "uucp_path", "vmnet", "whois",
)
FLAGS: tuple[str, ...] = ("OTH", "REJ", "RSTO", "RSTOS0", "RSTR", "S0", "S1", "S2", "S3", "SF",
                          "SH")
CATEGORICAL: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (1, "protocol_type", PROTOCOLS), (2, "service", SERVICES), (3, "flag", FLAGS))
"""(column index, name, fixed vocabulary) of the three categorical features."""

NUMERIC_COLUMNS: tuple[int, ...] = tuple(i for i in range(41) if i not in (1, 2, 3))
NUMERIC_NAMES: tuple[str, ...] = tuple(FEATURE_NAMES[i] for i in NUMERIC_COLUMNS)

BINARY_FEATURES: tuple[str, ...] = ("land", "logged_in", "root_shell", "is_host_login",
                                    "is_guest_login")
"""0/1 flags: kept as they are, kind ``"binary"``."""
RATE_FEATURES: tuple[str, ...] = tuple(n for n in FEATURE_NAMES if n.endswith("_rate"))
"""Fractions in [0, 1]: kept as they are, kind ``"continuous"``."""
LOG1P_FEATURES: tuple[str, ...] = ("duration", "src_bytes", "dst_bytes", "hot",
                                   "num_compromised", "num_root", "num_file_creations")
"""Heavy-tailed counts (raw maxima from ~100 to ~1e9, mostly 0): ``log1p`` before min-max."""
COUNT_FEATURES: tuple[str, ...] = tuple(
    n for n in NUMERIC_NAMES if n not in BINARY_FEATURES + RATE_FEATURES + LOG1P_FEATURES)
"""Integer counts scaled linearly: kind ``"integer"`` with resolution ``1 / (max - min)``."""
CONSTANT_FEATURES: tuple[str, ...] = ("num_outbound_cmds",)
"""Always 0 in every KDD file; removed by ``drop_constant=True``."""

CATEGORIES: tuple[str, ...] = ("normal", "DoS", "Probe", "R2L", "U2R")
BINARY_CLASSES: tuple[str, ...] = ("normal", "attack")

_BY_CATEGORY: dict[str, tuple[str, ...]] = {
    "normal": ("normal",),
    "DoS": ("back", "land", "neptune", "pod", "smurf", "teardrop",
            "apache2", "mailbomb", "processtable", "udpstorm"),
    "Probe": ("ipsweep", "nmap", "portsweep", "satan", "mscan", "saint"),
    "R2L": ("ftp_write", "guess_passwd", "imap", "multihop", "phf", "spy", "warezclient",
            "warezmaster", "named", "sendmail", "snmpgetattack", "snmpguess", "worm", "xlock",
            "xsnoop"),
    # httptunnel is grouped with U2R: this is the grouping that yields the published KDDTest+
    # counts 9,711 / 7,458 / 2,421 / 2,754 / 200 (with httptunnel in R2L they are
    # ... / 2,887 / 67).
    "U2R": ("buffer_overflow", "loadmodule", "perl", "rootkit",
            "httptunnel", "ps", "sqlattack", "xterm"),
}
ATTACK_CATEGORY: dict[str, str] = {a: c for c, names in _BY_CATEGORY.items() for a in names}
"""Attack name (as in the NSL-KDD files) -> one of :data:`CATEGORIES`."""
ATTACK_NAMES: tuple[str, ...] = tuple(ATTACK_CATEGORY)
TEST_ONLY_ATTACKS: tuple[str, ...] = (
    "apache2", "mailbomb", "processtable", "udpstorm", "mscan", "saint", "httptunnel", "named",
    "sendmail", "snmpgetattack", "snmpguess", "worm", "xlock", "xsnoop", "ps", "sqlattack",
    "xterm")
"""The 17 attacks that occur in the KDD test files but not in the training files."""


def check_labels(labels: str) -> LabelMode:
    """``labels`` itself when it is a :data:`LabelMode`, else a :class:`ValueError`."""
    if labels not in ("binary", "5class"):
        raise ValueError(f"labels must be 'binary' or '5class', got {labels!r}")
    return labels  # type: ignore[return-value]


def class_names(labels: LabelMode) -> tuple[str, ...]:
    """The class names of a label mode: :data:`BINARY_CLASSES` or :data:`CATEGORIES`."""
    return BINARY_CLASSES if labels == "binary" else CATEGORIES
