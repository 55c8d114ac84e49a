"""The token row: a gr.HTML component whose cells the user edits by keyboard or mouse, and which
animates a run.

Its value is {"html": ..., "cells": [...], "action": ...}. The page's JavaScript only reports what
was clicked (an "action") through the custom `cell_action` event; Python applies it and sends the
new row back. Kept in its own module because Gradio writes a .pyi beside modules that define
component subclasses.
"""

from __future__ import annotations

import json

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
.cell:focus-visible { outline: 3px solid #e8a33d; outline-offset: 1px; }
.cell .cell-input { font: inherit; border: none; outline: none; background: #fff8e6; padding: 0; }
.cell .d { display: block; font: 10px ui-monospace, monospace; color: #567; }
.cell.drifted { border-color: #c0392b; }
.row.animating[data-run] .cell[data-position] { cursor: help; }
.caption { font: 14px/1.4 ui-sans-serif, system-ui, sans-serif; color: #234; padding-top: 2px; }
.status a.to-edit { color: #1f4e79; }
.cell.caret { border: none; background: none; color: #1f4e79; animation: blink 1s step-end infinite; }
@keyframes blink { 50% { opacity: 0; } }
"""

JS = """
// The row reports what the user did as an `action` (the custom cell_action event); Python applies
// it and sends the new row back. Keys on a focused cell: a character starts typing a new word into
// it (Enter or Tab commits, Escape cancels; `_` or `...` makes a blank), Enter toggles the lock,
// Backspace on an empty cell deletes it, Tab / Shift+Tab move, Ctrl+Z / Ctrl+Shift+Z (or Ctrl+Y)
// undo and redo every change of the row, the text box's included.
const CELLS = '.row.editing .cell[data-index]:not(.add)';
let focusWanted = null;  // {index, seen}: the cell to keep focused when the row is drawn again, numbered
                         // as the row stood once `seen` answers were drawn (see adjusted)
let shown = null, expected = null;  // the cells on screen; the cells an undo or redo asked for
const past = [], future = [];
// One action at a time: each carries an id, and the next is sent once the row has drawn Python's
// answer to it (a value that echoes the id), so actions made faster than the server answers all
// apply, in order. An action made before the answers to earlier inserts and deletes were drawn has
// its index moved by them (or is dropped, if its cell was deleted). An undo or redo waits its turn
// too, and reads the history once the rows before it are drawn.
const waiting = [];  // functions giving the next value change to send (null: nothing to send)
let inFlight = null, sentId = 0, answers = 0;  // the action awaiting its answer; answers drawn so far
let sentAction = null, sentCells = 0;  // that action, and how many cells the row had when it was sent
const moves = [];  // [answer number, kind, index] of every insert and delete answered

function adjusted(index, seen) {  // a cell's index when `seen` answers were drawn, in the row now (null: deleted)
  for (const [n, kind, at] of moves) {
    if (n <= seen || index < 0) continue;
    if (kind === 'delete') { if (index === at) return null; if (index > at) index -= 1; }
    else if (kind === 'insert' && at >= 0 && index > at) index += 1;
  }
  return index;
}
// seen: the answers drawn when the user acted. focusOffset: where focus goes once the action is applied,
// counted from its cell (null: where it is), unless the user has moved focus since.
function send(action, seen = answers, focusOffset = null, focusThen = focusWanted) {
  queue(() => {
    const index = typeof action.index === 'number' ? adjusted(action.index, seen) : action.index;
    if (index === null) return null;
    if (focusOffset !== null && focusWanted === focusThen) {  // numbered as the row will be once it is answered
      focusWanted = {index: index + focusOffset, seen: answers + 1};
    }
    return {action: Object.assign({}, action, {index: index})};
  });
}
function queue(next) { waiting.push(next); if (inFlight === null) sendNext(); }
function sendNext() {
  while (waiting.length) {
    const update = waiting.shift()();
    if (update === null) continue;
    sentId += 1;
    sentAction = update.action = Object.assign({}, update.action, {id: sentId});
    sentCells = cellCount();
    props.value = Object.assign({}, props.value || {}, update);
    inFlight = setTimeout(answered, 20000);  // no answer (the server failed): go on
    trigger('cell_action');
    return;
  }
}
function answered() {
  clearTimeout(inFlight);
  inFlight = null;
  answers += 1;
  const change = cellCount() - sentCells;  // an action refused (or not answered) moved nothing
  if ((sentAction.kind === 'insert' && change === 1) || (sentAction.kind === 'delete' && change === -1)) {
    moves.push([answers, sentAction.kind, sentAction.index]);
    if (moves.length > 200) moves.shift();
  }
  sendNext();
}
function cellsValue() { return (props.value && props.value.cells) || []; }
function cellCount() { return cellsValue().length; }
function cellsNow() { return JSON.stringify(cellsValue()); }
function restore(from, to) {  // Python checks the restored cells as it would any row sent to it
  queue(() => {
    if (!from.length || shown === null) return null;
    to.push(shown);
    expected = from.pop();
    return {cells: JSON.parse(expected), action: {kind: 'edit_mode'}};
  });
}
function undo() { restore(past, future); }
function redo() { restore(future, past); }
function redrawn() {
  if (element.querySelector('.row.editing')) {
    const now = cellsNow();
    if (shown !== null && now !== shown) {
      if (now !== expected) { past.push(shown); future.length = 0; if (past.length > 200) past.shift(); }
      expected = null;
    }
    shown = now;
  }
  if (inFlight !== null && props.value && props.value.answered === sentId) answered();  // its answer is drawn
  if (typing !== null && !typing.input.isConnected) {  // an answer to an earlier action redrew the row
    const {index, word, input} = typing, cell = element.querySelectorAll(CELLS)[index];
    typing = null;
    if (cell && cell.dataset.word === word) beginTyping(cell, input.value);  // its cell is still there
  }
  if (focusWanted !== null && (document.activeElement === null || document.activeElement === document.body)) {
    const index = adjusted(focusWanted.index, focusWanted.seen);  // the redraw took focus from its cell
    if (index !== null) focusCell(index);
  }
}
watch('value', redrawn);  // after every re-render
setTimeout(redrawn, 0);

function indexOf(cell) { return parseInt(cell.dataset.index, 10); }
// A cell the user focuses keeps focus when the row is drawn anew (an answer to an earlier action can
// come after they moved on); focus they take out of the row, by a click or Tab elsewhere, stays there.
element.addEventListener('focusin', (event) => {
  const cell = event.target.closest(CELLS);
  if (cell && event.target === cell) focusWanted = {index: indexOf(cell), seen: answers};
});
for (const type of ['focusin', 'mousedown']) {
  document.addEventListener(type, (event) => {
    if (element.isConnected && event.target instanceof Node && !element.contains(event.target)) focusWanted = null;
  });
}
function focusCell(index) {
  const cells = element.querySelectorAll(CELLS);
  if (cells.length) cells[Math.max(0, Math.min(index, cells.length - 1))].focus();
}
let typing = null;  // the cell being typed into: {index, word (the cell's own), input}
function beginTyping(cell, text) {
  const index = indexOf(cell), label = cell.querySelector('.w');
  if (!label || cell.querySelector('input')) return;
  const input = document.createElement('input');
  input.className = 'cell-input'; input.value = text; input.size = Math.max(6, text.length + 2);
  input.setAttribute('aria-label', 'new word for cell ' + (index + 1) + ' (Enter to keep, Escape to cancel)');
  label.replaceWith(input);
  input.focus(); input.setSelectionRange(text.length, text.length);
  typing = {index: index, word: cell.dataset.word, input: input};
  let finished = false;
  const finish = (commit, move) => {
    if (finished) return;
    finished = true;
    if (typing !== null && typing.input === input) typing = null;
    const word = input.value.trim();
    if (commit && word) {
      send({kind: 'edit', index: index, word: word}, answers, move);
    } else {
      input.replaceWith(label);
      if (move !== null) focusCell(index + (commit ? move : 0));
    }
  };
  input.addEventListener('keydown', (event) => {
    event.stopPropagation();
    if (event.key === 'Enter') { event.preventDefault(); finish(true, 0); }
    else if (event.key === 'Escape') { event.preventDefault(); finish(false, 0); }
    else if (event.key === 'Tab') { event.preventDefault(); finish(true, event.shiftKey ? -1 : 1); }
    else if (event.key === 'Backspace' && input.value === '') {
      event.preventDefault(); finished = true; typing = null;
      send({kind: 'delete', index: index}, answers, -1);
    }
    else input.size = Math.max(6, input.value.length + 3);
  });
  // leaving the cell keeps the word; a redraw that took the input away goes on typing (see redrawn)
  input.addEventListener('blur', () => setTimeout(() => { if (input.isConnected) finish(true, null); }, 0));
}

// A click on a cell waits briefly, since it may be the start of a double-click (which types into the
// cell instead). Each cell waits on its own: quick clicks on several cells all toggle, and a
// double-click cancels only its own cell's toggle.
const pendingToggles = new Map();  // cell index -> the timer of its toggle
function cancelToggle(index) { clearTimeout(pendingToggles.get(index)); pendingToggles.delete(index); }
element.addEventListener('click', (event) => {
  if (event.target.closest('.to-edit')) { event.preventDefault(); send({kind: 'edit_mode'}); return; }
  const word = event.target.closest('.row.animating[data-run] .cell[data-position]');
  if (word) {  // a word of a stored run: what the model weighed there, at the step on screen
    const row = word.closest('.row');
    props.value = Object.assign({}, props.value || {}, {action: {kind: 'inspect', run: +row.dataset.run,
      step: +row.dataset.step, position: +word.dataset.position}});
    trigger('inspect');
    return;
  }
  const cell = event.target.closest('.row.editing .cell');
  if (!cell || event.target.closest('input')) return;
  const index = indexOf(cell);
  const button = event.target.closest('button[data-action]');
  if (button) {  // insert: the new blank (after the cell, or last); delete: the cell now in its place
    const kind = button.dataset.action;
    send({kind: kind, index: index}, answers, kind === 'insert' ? (index < 0 ? 1e9 : 1) : 0);
    return;
  }
  if (index < 0) return;  // the "+ blank" cell around its button
  cancelToggle(index);
  const seen = answers, focusThen = focusWanted;  // the row and the focus as clicked (see send)
  pendingToggles.set(index, setTimeout(() => {
    pendingToggles.delete(index);
    send({kind: 'toggle', index: index}, seen, 0, focusThen);
  }, 280));
});
element.addEventListener('dblclick', (event) => {
  const cell = event.target.closest(CELLS);
  if (!cell) return;
  cancelToggle(indexOf(cell));
  if (event.target.closest('button, input')) return;
  beginTyping(cell, cell.dataset.word === '...' ? '' : (cell.dataset.word || ''));
});
element.addEventListener('keydown', (event) => {
  const cell = event.target.closest(CELLS);
  if (!cell || event.target !== cell) return;
  const index = indexOf(cell), word = cell.dataset.word || '';
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.key === 'Enter' || event.key === ' ') {
    event.preventDefault(); send({kind: 'toggle', index: index}, answers, 0);
  }
  else if (event.key === 'Backspace' || event.key === 'Delete') {
    event.preventDefault();
    if (event.key === 'Backspace' && word && word !== '...') beginTyping(cell, word.slice(0, -1));
    else send({kind: 'delete', index: index}, answers, event.key === 'Backspace' ? -1 : 0);
  }
  else if (event.key === 'ArrowRight') { event.preventDefault(); focusCell(index + 1); }
  else if (event.key === 'ArrowLeft') { event.preventDefault(); focusCell(index - 1); }
  else if (event.key.length === 1) { event.preventDefault(); beginTyping(cell, event.key); }
});
// The row that follows a text box (FOLLOWS, its textarea's selector) hears of every change of its
// text. Gradio reports the text box's `input` event on key presses only, so a change made without
// one (a paste, a cut, a drop, Backspace or Delete, the browser's own undo, text set by a script
// such as Playwright's fill) is reported here as a key press with no key once the text box holds
// the new text: Gradio answers it with the same `input` event as a typed character. Text that
// Python writes into the box (after a row action) fires no native `input`, so the row is never
// redrawn from it.
const FOLLOWS = __FOLLOWS__;
if (FOLLOWS) {
  let keyed = false;  // a real key press whose character the next `input` inserts: Gradio reports that one
  document.addEventListener('keypress', (event) => {
    if (!event.isTrusted || !(event.target instanceof Element) || !event.target.matches(FOLLOWS)) return;
    keyed = true;
    setTimeout(() => { keyed = false; }, 0);  // its `input` comes in the same task, or not at all
  }, true);
  document.addEventListener('input', (event) => {
    const box = event.target;
    if (!element.isConnected || !(box instanceof Element) || !box.matches(FOLLOWS)) return;
    if (keyed) { keyed = false; return; }
    setTimeout(() => box.dispatchEvent(new KeyboardEvent('keypress', {key: 'Unidentified', bubbles: true})), 0);
  });
}
document.addEventListener('keydown', (event) => {
  if (!element.isConnected) return;  // a row the page has since drawn anew
  if (!(event.ctrlKey || event.metaKey) || !element.querySelector('.row.editing')) return;
  const inside = element.contains(document.activeElement) && !document.activeElement.closest('input');
  if (!inside && document.activeElement !== document.body) return;  // the text box keeps its own undo
  const key = event.key.toLowerCase();
  if (key === 'z' && !event.shiftKey) { event.preventDefault(); undo(); }
  else if ((key === 'z' && event.shiftKey) || key === 'y') { event.preventDefault(); redo(); }
});
"""


class TokenRow(gr.HTML):
    def __init__(self, value: dict | None = None, follows: str | None = None, **kwargs):
        """`follows`: the elem_id of the text box whose every change (typed, pasted, deleted) the
        row hears of as that text box's `input` event."""
        selector = json.dumps(f"#{follows} textarea" if follows else None)
        super().__init__(
            value=value or {"html": "", "cells": []},
            html_template="${(value && value.html) ? value.html : '<div class=\"empty\">type a sentence or "
                          "template above</div>'}",
            css_template=CSS, js_on_load=JS.replace("__FOLLOWS__", selector), **kwargs)
