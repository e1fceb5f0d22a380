#!/usr/bin/python
"""Ansible module: run one `vmq-validate` report command in-process and return its structured report."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: vmq_validate
short_description: Run a vmq-validate report command and return the structured report
description:
  - Calls C(validators.cli.execute(argv)) in-process (no CLI text is parsed) and returns
    C(Report.to_dict()) as RV(report), with every registered secret masked.
  - Optionally writes the JSON and JUnit reports, through the validators' one report writer
    (C(validators.report.writer)); each file is written atomically and only when its content changes,
    so C(changed) reflects real change and a repeated run reports no change. A symbolic link, a
    directory or an unwritable place at a report path fails the task with one line naming it.
  - Fails when the report has findings at or above O(fail_on) (unless O(fail_on_findings=false)),
    after the report files are written, with the findings listed in the message.
  - Runs in check mode (the validators only read); report files are then not written.
options:
  command:
    description: The report command, e.g. C(plan), C(cluster), C(distribution), C(clients), C(preflight).
    type: str
    required: true
  args:
    description: The command's own arguments, e.g. C([-f, build/local/manifests.yaml, --release, vernemq]).
    type: list
    elements: str
    default: []
  fail_on:
    description:
      - Findings of this severity or worse fail the task (and count as failed in the reports); C(critical) fails
        on critical findings only, C(never) on none.
      - The same thresholds as C(vmq-validate --fail-on); both take them from C(validators.core.model.FAIL_ON).
    type: str
    choices: [critical, error, warning, info, never]
    default: error
  fail_on_findings:
    description: Fail the task when there are findings at or above O(fail_on).
    type: bool
    default: true
  policy:
    description: A vmq-validate policy file (per-check severity, enabled, options).
    type: path
  report_json:
    description: Write the JSON report here.
    type: path
  report_junit:
    description: Write the JUnit XML report here.
    type: path
  secret_env:
    description:
      - Environment variables set for the run only, e.g. the ones a targets file names in
        C(cookie_env)/C(api_key_env). Values are masked in every output.
    type: dict
    default: {}
  stdin:
    description: Text the command reads as its standard input (e.g. manifests for C(plan -f -)).
    type: str
  project_dir:
    description:
      - Directory holding the C(validators) package (the roles pass the toolkit's checkout). When it holds one,
        that package is used before any installed copy, so the module runs the validators of its own checkout.
    type: path
author: vernemq-k8s-toolkit
"""

EXAMPLES = r"""
- name: Static checks of the rendered chart
  vmq_validate:
    command: plan
    args: [-f, build/local/manifests.yaml, --namespace, vernemq, --release, vernemq]
    report_json: artifacts/local/plan.json
    report_junit: artifacts/local/plan.junit.xml
"""

RETURN = r"""
report:
  description: The report (C(validators.core.model.Report.to_dict)), secrets masked.
  returned: when the command ran
  type: dict
findings:
  description: The results at or above O(fail_on), each with check, severity, status, subject, message, remedy.
  returned: when the command ran
  type: list
  elements: dict
summary:
  description: The report's summary (counts by status and severity, fail_on, failed).
  returned: when the command ran
  type: dict
finding_lines:
  description: One line per finding (command, check, status, severity, subject, message, remedy), for a play's failure message.
  returned: when the command ran
  type: list
  elements: str
reports_written:
  description: The report files whose content changed (would change in check mode).
  returned: always
  type: list
  elements: str
"""

import contextlib
import io
import os
import stat
import sys

from ansible.module_utils.basic import AnsibleModule


def _import_validators(project_dir):
    # The checkout's own validators first: the interpreter may have another checkout's copy installed, whose
    # checks or options (e.g. the fail_on thresholds) are not the ones this module and its roles expect.
    if project_dir and os.path.isdir(os.path.join(project_dir, "validators")):
        sys.path.insert(0, project_dir)
    import validators.cli  # noqa: F401
    from validators import cli
    from validators.core import redact
    from validators.core.errors import VmqError
    from validators.core.model import FAIL_ON
    from validators.report import render
    from validators.report.writer import write_report
    return cli, redact, VmqError, FAIL_ON, render, write_report


def _differs(path, text):
    """True unless ``path`` is a regular file (not a link, FIFO or device: never read those) holding ``text``."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return True
        with open(path, encoding="utf-8") as fh:
            return fh.read() != text
    except (OSError, UnicodeDecodeError):
        return True


def main():
    module = AnsibleModule(
        argument_spec=dict(
            command=dict(type="str", required=True),
            args=dict(type="list", elements="str", default=[]),
            # choices: validators.core.model.FAIL_ON, checked once the validators are imported (below)
            fail_on=dict(type="str", default="error"),
            fail_on_findings=dict(type="bool", default=True),
            policy=dict(type="path"),
            report_json=dict(type="path"),
            report_junit=dict(type="path"),
            secret_env=dict(type="dict", default={}, no_log=True),
            stdin=dict(type="str"),
            project_dir=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        cli, redact, VmqError, FAIL_ON, render, write_report = _import_validators(p["project_dir"])
    except ImportError as exc:
        module.fail_json(msg="cannot import the validators package (%s). Fix: run ansible-playbook from the "
                             "toolkit's venv (make site), so that ansible_playbook_python has it." % exc)

    from validators.commands.base import ReportCommand
    if p["fail_on"] not in FAIL_ON:
        module.fail_json(msg="fail_on: %r is not a threshold. Fix: use one of %s." % (
            p["fail_on"], ", ".join(FAIL_ON)), reports_written=[])
    _parser, commands = cli.build_parser()
    reports = sorted(name for name, cmd in commands.items() if isinstance(cmd, ReportCommand))
    if p["command"] not in reports:
        module.fail_json(msg="vmq-validate %s: not a report command. Fix: use one of %s." % (
            p["command"], ", ".join(reports)), reports_written=[])

    for value in p["secret_env"].values():
        redact.register(str(value))
    argv = [p["command"]] + list(p["args"]) + ["--fail-on", p["fail_on"]]
    if p["policy"]:
        argv += ["--policy", p["policy"]]

    saved = {k: os.environ.get(k) for k in p["secret_env"]}
    os.environ.update({k: str(v) for k, v in p["secret_env"].items()})
    stderr = io.StringIO()
    saved_stdin = sys.stdin
    if p["stdin"] is not None:
        sys.stdin = io.StringIO(p["stdin"])
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            report = cli.execute(argv)
    except VmqError as exc:
        module.fail_json(msg=redact.scrub("vmq-validate %s: %s" % (p["command"], exc)), argv=redact.scrub_obj(argv),
                         reports_written=[])
    except SystemExit:
        module.fail_json(msg=redact.scrub("vmq-validate %s: usage error: %s" % (
            p["command"], stderr.getvalue().strip().splitlines()[-1] if stderr.getvalue().strip() else "?")),
            argv=redact.scrub_obj(argv), reports_written=[])
    except Exception as exc:  # a bug: one scrubbed line, never a traceback that could hold a secret
        module.fail_json(msg=redact.scrub("vmq-validate %s: internal error: %s: %s" % (
            p["command"], type(exc).__name__, str(exc)[:300])), argv=redact.scrub_obj(argv), reports_written=[])
    finally:
        sys.stdin = saved_stdin
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

    doc = redact.scrub_obj(report.to_dict(p["fail_on"]))
    findings = [redact.scrub_obj({"check": r.check, "severity": r.severity.value, "status": r.status.value,
                                  "subject": r.subject, "message": r.message, "remedy": r.remedy})
                for r in report.findings_at_or_above(p["fail_on"])]
    written = []
    for path, fmt in ((p["report_json"], "json"), (p["report_junit"], "junit")):
        if not path:
            continue
        text = render(report, fmt, fail_on=p["fail_on"])
        if _differs(path, text):
            written.append(path)
            if not module.check_mode:
                try:
                    write_report(path, text, "report_" + fmt)
                except VmqError as exc:
                    module.fail_json(msg=redact.scrub("vmq-validate %s: %s" % (p["command"], exc)),
                                     reports_written=written[:-1])

    lines = ["%s: %s %s [%s] %s: %s Remedy: %s" % (p["command"], f["check"], f["status"].upper(), f["severity"],
                                                   f["subject"], f["message"], f["remedy"]) for f in findings]
    result = dict(changed=bool(written), report=doc, findings=findings, finding_lines=lines, summary=doc["summary"],
                  reports_written=written)
    if findings and p["fail_on_findings"]:
        result["msg"] = "vmq-validate %s: %d finding(s) at or above %s:\n- %s" % (
            p["command"], len(findings), p["fail_on"], "\n- ".join(lines))
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
