// @ts-check
// The one way the page follows work that takes a while: read it, show it, and read it again after an interval
// while it is still going, until it has ended or the signal aborts (a dialog closed, another item chosen).

/**
 * @template T
 * @typedef {object} PollOptions
 * @property {(signal: AbortSignal | undefined) => Promise<T>} read  Read it afresh.
 * @property {(value: T) => boolean} going  Whether it is still going, so worth reading again.
 * @property {(value: T) => void} [show]  Show what was read (and the initial value).
 * @property {number} intervalMs  How long to wait between reads.
 * @property {AbortSignal} [signal]  Stops the polling: the promise rejects with an AbortError.
 * @property {T} [initial]  A value in hand: shown at once, read afresh only after the interval. Without one
 *   (undefined), the first read is at once.
 */

/** @param {unknown} error */
export function isAbort(error) {
  return typeof error === "object" && error !== null && "name" in error && error.name === "AbortError";
}

/**
 * Resolve after `ms`, or reject at once when the signal aborts.
 * @param {number} ms
 * @param {AbortSignal} [signal]
 * @returns {Promise<void>}
 */
export function pause(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new DOMException("Stopped watching.", "AbortError"));
      return;
    }
    const timer = window.setTimeout(resolve, ms);
    signal?.addEventListener(
      "abort",
      () => {
        window.clearTimeout(timer);
        reject(new DOMException("Stopped watching.", "AbortError"));
      },
      { once: true },
    );
  });
}

/**
 * Follow something until it is no longer going; resolves to the last value read.
 * @template T
 * @param {PollOptions<T>} options
 * @returns {Promise<T>}
 */
export async function poll({ read, going, show, intervalMs, signal, initial }) {
  let value = initial === undefined ? await read(signal) : initial;
  show?.(value);
  while (going(value)) {
    await pause(intervalMs, signal);
    value = await read(signal);
    show?.(value);
  }
  return value;
}

/**
 * A poll that can be stopped and started again (a list that follows its items, the selected environment):
 * `start` stops the poll under way first; a stopped poll ends quietly.
 */
export class Poller {
  /** @type {AbortController | null} */
  #controller = null;

  get running() {
    return this.#controller !== null;
  }

  /**
   * @template T
   * @param {Omit<PollOptions<T>, "signal">} options
   * @returns {Promise<void>}
   */
  async start(options) {
    this.stop();
    const controller = new AbortController();
    this.#controller = controller;
    try {
      await poll({ ...options, signal: controller.signal });
    } catch (error) {
      if (!isAbort(error)) throw error;
    } finally {
      if (this.#controller === controller) this.#controller = null;
    }
  }

  stop() {
    this.#controller?.abort();
    this.#controller = null;
  }
}
