"""The token row: a gr.HTML component whose cells the user clicks, and which animates a run.

Its value is {"html": ..., "cells": [...], "action": ...}. The page's JavaScript only reports what
was clicked (an "action") through the custom `cell_action` event; Python applies it and sends the
new row back. Kept in its own module because Gradio writes a .pyi beside modules that define
component subclasses.
"""

from __future__ import annotations

import gradio as gr

CSS = """
.row { display: flex; flex-wrap: wrap; gap: 6px; padding: 6px 0; min-height: 44px; }
.cell { position: relative; border: 1px solid #c9d3dd; border-radius: 6px; padding: 6px 10px; cursor: pointer;
        font: 15px/1.3 ui-sans-serif, system-ui, sans-serif; user-select: none; background: #fff;
        transition: background-color 60ms linear; }
.cell.locked { border: 2px solid #1f4e79; font-weight: 600; }
.cell.locked .lock { color: #1f4e79; margin-right: 4px; vertical-align: -1px; }
.cell.free { border-style: dashed; color: #355; }
.cell.ellipsis { border-style: dotted; color: #777; }
.row.editing .cell.free .w { color: #999; }
.cell .tools { display: none; position: absolute; top: -13px; right: -6px; z-index: 2; }
.cell:hover .tools { display: flex; }
.cell .tools button, .cell.add button { border: none; background: #e8eef4; border-radius: 4px; padding: 0 5px;
        margin-left: 2px; cursor: pointer; font-size: 12px; }
.cell.add { border: none; background: none; padding: 6px 0; }
.status { font: 13px ui-monospace, monospace; color: #456; padding-top: 4px; }
.empty { color: #888; font-style: italic; padding: 10px 0; }
.cell.caret { border: none; background: none; color: #1f4e79; animation: blink 1s step-end infinite; }
@keyframes blink { 50% { opacity: 0; } }
"""

JS = """
function send(action) {
  props.value = Object.assign({}, props.value || {}, {action: action});
  trigger('cell_action');
}
let pendingToggle = null;  // a click on a cell waits briefly: it may be the start of a double-click
element.addEventListener('click', (event) => {
  if (event.target.closest('.row.animating')) { send({kind: 'edit_mode'}); return; }
  const cell = event.target.closest('.row.editing .cell');
  if (!cell) return;
  const index = parseInt(cell.dataset.index, 10);
  const button = event.target.closest('button[data-action]');
  if (button) { send({kind: button.dataset.action, index: index}); return; }
  clearTimeout(pendingToggle);
  pendingToggle = setTimeout(() => send({kind: 'toggle', index: index}), 280);
});
element.addEventListener('dblclick', (event) => {
  clearTimeout(pendingToggle);
  const cell = event.target.closest('.row.editing .cell');
  if (!cell || cell.classList.contains('add') || event.target.closest('button')) return;
  const word = window.prompt('Word for this cell (it will be locked):', cell.dataset.word || '');
  if (word !== null) send({kind: 'edit', index: parseInt(cell.dataset.index, 10), word: word});
});
"""


class TokenRow(gr.HTML):
    def __init__(self, value: dict | None = None, **kwargs):
        super().__init__(
            value=value or {"html": "", "cells": []},
            html_template="${(value && value.html) ? value.html : '<div class=\"empty\">type a sentence or "
                          "template above</div>'}",
            css_template=CSS, js_on_load=JS, **kwargs)
