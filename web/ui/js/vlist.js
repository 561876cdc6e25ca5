// VirtualList renders only the rows in view (plus a few), recycling their
// elements, so a list of 13,635 points keeps a few dozen rows in the DOM.
// Rows have one fixed height; the spacer gives the scrollbar its length.

export class VirtualList {
  /**
   * @param {HTMLElement} scroller element with overflow:auto and a height
   * @param {{rowHeight:number, render:(row:HTMLElement, item:any, index:number)=>void, item:(i:number)=>any}} opts
   */
  constructor(scroller, { rowHeight, render, item, overscan = 6 }) {
    this.scroller = scroller;
    this.rowHeight = rowHeight;
    this.renderRow = render;
    this.item = item;
    this.overscan = overscan;
    this.total = 0;
    this.spacer = document.createElement("div");
    this.spacer.className = "vspacer";
    scroller.classList.add("vlist");
    scroller.append(this.spacer);
    this.rows = new Map(); // index -> element
    this.pool = [];
    this.frame = 0;
    this.onScroll = () => this.schedule();
    scroller.addEventListener("scroll", this.onScroll, { passive: true });
    this.resize = new ResizeObserver(() => this.schedule());
    this.resize.observe(scroller);
  }

  /** setTotal sets the number of rows and redraws. */
  setTotal(n) {
    this.total = n;
    this.spacer.style.height = n * this.rowHeight + "px";
    this.refresh();
  }

  /** refresh redraws every visible row (e.g. after a page of items arrived). */
  refresh() {
    for (const [i, el] of this.rows) this.draw(el, i);
    this.schedule();
  }

  schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.update();
    });
  }

  draw(el, i) {
    el.style.transform = `translateY(${i * this.rowHeight}px)`;
    el.dataset.index = i;
    this.renderRow(el, this.item(i), i);
  }

  update() {
    const h = this.scroller.clientHeight || 600;
    const first = Math.max(0, Math.floor(this.scroller.scrollTop / this.rowHeight) - this.overscan);
    const last = Math.min(this.total, Math.ceil((this.scroller.scrollTop + h) / this.rowHeight) + this.overscan);
    for (const [i, el] of this.rows) {
      if (i < first || i >= last) {
        this.rows.delete(i);
        el.remove();
        this.pool.push(el);
      }
    }
    for (let i = first; i < last; i++) {
      if (this.rows.has(i)) continue;
      const el = this.pool.pop() || document.createElement("div");
      el.className = "vrow";
      el.style.height = this.rowHeight + "px";
      this.draw(el, i);
      this.rows.set(i, el);
      this.spacer.append(el);
    }
  }

  /** destroy stops listening. */
  destroy() {
    cancelAnimationFrame(this.frame);
    this.scroller.removeEventListener("scroll", this.onScroll);
    this.resize.disconnect();
  }
}
