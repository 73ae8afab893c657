// The emulated Raspberry Pi Pico: real MicroPython RP2040 firmware on the rp2040js emulator.
//
//   node pico_emulator.mjs --rp2040js DIR --bootrom FILE --firmware FILE.uf2 \
//       --image FS.lfs --fs-offset N --fs-size N [--store-image FILE] [--events-fd N]
//
// Started by pico.py (EmulatedPico), which owns the pseudo-terminal: Node has no pty API, so
// the USB CDC serial stream of the board travels on this process's stdin (host -> board) and
// stdout (board -> host), and pico.py relays it to and from the pty. Events for pico.py
// ("usb" when the board's CDC port is configured, "saved" after the flash image is written)
// are JSON lines on the inherited file descriptor --events-fd. Diagnostics go to stderr.
//
// Flash: rp2040js 1.4.1 models the QSPI controller (SSI) as a register stub, so the erase and
// program commands the bootrom sends to the flash chip never reach mcu.flash (rp2040js issue
// #157) and MicroPython could not write its filesystem. The bootrom's flash functions are
// reached through its function table, so their entries are replaced by BKPT instructions whose
// handlers do the erase/program on mcu.flash and return to the caller. The filesystem region
// of flash is the image file: loaded at start, written back (atomically) shortly after the
// last write and at exit. With --store-image, so is the raw region between the firmware's end
// and the filesystem, where the Minerva runtime keeps capsules to use in place (flashstore.py).
import fs from 'fs';
import path from 'path';
import { pathToFileURL } from 'url';

const FLASH_BASE = 0x10000000;
const CPU_HZ = 125e6;
const CYCLE_NS = 1e9 / CPU_HZ;
const BOOTROM_BYTES = 16384;
// Write the image this long (wall ms) after the last flash write: littlefs commits in bursts.
const SAVE_DELAY_MS = 300;
// Instructions per slice of emulation before Node's event loop gets a turn (stdin, timers).
// Small, because a host's bytes wait for the next slice: a 50 KB mpremote cp took 14.8 s with
// 200,000 and 8.0 s with 10,000, with the same compute speed.
const SLICE = 10000;

function parseArgs(argv) {
  const opts = {};
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    if (argv[i + 1] === undefined) throw new Error(`--${key} needs a value`);
    opts[key] = argv[i + 1];
  }
  for (const key of ['rp2040js', 'bootrom', 'firmware', 'image', 'fs-offset', 'fs-size']) {
    if (!(key in opts)) throw new Error(`missing --${key}`);
  }
  opts.fsOffset = Number(opts['fs-offset']);
  opts.fsSize = Number(opts['fs-size']);
  return opts;
}

const opts = parseArgs(process.argv.slice(2));
const log = (text) => process.stderr.write(`[pico] ${text}\n`);
const event = (fields) => {
  if (opts['events-fd'] !== undefined) {
    fs.writeSync(Number(opts['events-fd']), JSON.stringify(fields) + '\n');
  }
  log(JSON.stringify(fields));
};

const rp2040js = await import(
  pathToFileURL(path.join(opts.rp2040js, 'rp2040js', 'dist', 'esm', 'index.js')).href);
const { Simulator, USBCDC, ConsoleLogger, LogLevel } = rp2040js;

const sim = new Simulator();
const mcu = sim.rp2040;
mcu.logger = new ConsoleLogger(LogLevel.Error);

// -- memory: bootrom, firmware, filesystem -------------------------------------------------
const bootrom = fs.readFileSync(opts.bootrom);
if (bootrom.length !== BOOTROM_BYTES) {
  throw new Error(`${opts.bootrom}: ${bootrom.length} bytes, an RP2040 bootrom has 16384`);
}
// loadBootrom() resets the chip, and the reset fills the flash with 0xFF: it must come first.
mcu.loadBootrom(new Uint32Array(bootrom.buffer, bootrom.byteOffset, BOOTROM_BYTES / 4));

function loadUf2(file) {
  const uf2 = fs.readFileSync(file);
  let blocks = 0;
  for (let at = 0; at + 512 <= uf2.length; at += 512) {
    const block = new DataView(uf2.buffer, uf2.byteOffset + at, 512);
    const magic = [block.getUint32(0, true), block.getUint32(4, true), block.getUint32(508, true)];
    if (magic[0] !== 0x0a324655 || magic[1] !== 0x9e5d5157 || magic[2] !== 0x0ab16f30) {
      throw new Error(`${file}: not a UF2 file (bad block at byte ${at})`);
    }
    const notMainFlash = block.getUint32(8, true) & 1;
    if (notMainFlash) continue;
    const target = block.getUint32(12, true) - FLASH_BASE;
    const size = block.getUint32(16, true);
    mcu.flash.set(uf2.subarray(at + 32, at + 32 + size), target);
    blocks++;
  }
  if (!blocks) throw new Error(`${file}: no flash blocks in this UF2`);
  return blocks;
}
log(`firmware ${opts.firmware}: ${loadUf2(opts.firmware)} UF2 blocks`);
// The raw region: from the firmware's last programmed byte, rounded up to a 4 KB sector, to
// the filesystem (the device finds the same bounds from the firmware's binary info).
let firmwareEnd = 0;
for (let at = opts.fsOffset - 1; at >= 0; at--) {
  if (mcu.flash[at] !== 0xff) { firmwareEnd = at + 1; break; }
}
const storeOffset = Math.ceil(firmwareEnd / 4096) * 4096;

const fsEnd = opts.fsOffset + opts.fsSize;
if (fs.existsSync(opts.image)) {
  const image = fs.readFileSync(opts.image);
  if (image.length !== opts.fsSize) {
    throw new Error(`${opts.image}: ${image.length} bytes, the filesystem is ${opts.fsSize}`);
  }
  mcu.flash.set(image, opts.fsOffset);
  log(`filesystem image ${opts.image} loaded at flash offset 0x${opts.fsOffset.toString(16)}`);
} else {
  log(`no image at ${opts.image}: the firmware formats an empty flash on first boot`);
}

const storeImage = opts['store-image'];
if (storeImage && fs.existsSync(storeImage)) {
  const image = fs.readFileSync(storeImage);
  if (image.length === opts.fsOffset - storeOffset) {
    mcu.flash.set(image, storeOffset);
    log(`store image ${storeImage} loaded at flash offset 0x${storeOffset.toString(16)}`);
  } else {
    log(`${storeImage}: ${image.length} bytes, not this firmware's raw region: left erased`);
  }
}

let saveTimer = null;
let fsDirty = false;
let storeDirty = false;
function writeAtomically(file, bytes) {
  const temporary = `${file}.tmp`;
  fs.writeFileSync(temporary, bytes);
  fs.renameSync(temporary, file);
}
function saveImage() {
  if (saveTimer) clearTimeout(saveTimer);
  saveTimer = null;
  if (storeDirty) {
    storeDirty = false;
    writeAtomically(storeImage, mcu.flash.subarray(storeOffset, opts.fsOffset));
  }
  if (!fsDirty) return;
  fsDirty = false;
  writeAtomically(opts.image, mcu.flash.subarray(opts.fsOffset, fsEnd));
  event({ event: 'saved', image: opts.image });
}
function flashWritten(offset, length) {
  if (storeImage && offset < opts.fsOffset && offset + length > storeOffset) {
    storeDirty = true;
  } else if (offset + length <= opts.fsOffset || offset >= fsEnd) {
    return;
  } else {
    fsDirty = true;
  }
  if (saveTimer) clearTimeout(saveTimer);
  saveTimer = setTimeout(saveImage, SAVE_DELAY_MS);
}

// -- the bootrom's flash functions, done here (see the header) ------------------------------
const flashHandlers = {};
function replaceBootromFunction(tag, breakpoint, handler) {
  const rom = new Uint8Array(mcu.bootrom.buffer);
  const half = (address) => rom[address] | (rom[address + 1] << 8);
  // RP2040 datasheet 2.8.3: the halfword at 0x14 points to the function table, pairs of
  // (two-letter code, function address) ending with a zero code.
  let entry = 0;
  for (let at = half(0x14); half(at); at += 4) {
    if (half(at) === (tag.charCodeAt(0) | (tag.charCodeAt(1) << 8))) entry = half(at + 2) & ~1;
  }
  if (!entry) throw new Error(`bootrom function ${tag} not found`);
  const word = entry >> 2;
  const shift = entry & 2 ? 16 : 0;
  const bkpt = 0xbe00 | breakpoint;
  mcu.bootrom[word] = ((mcu.bootrom[word] & ~(0xffff << shift)) | (bkpt << shift)) >>> 0;
  flashHandlers[breakpoint] = handler;
}
const registers = mcu.core.registers;
const stats = { erasedBytes: 0, programmedBytes: 0 };
// Entering and leaving XIP, and flushing its cache, have nothing to do on an array.
replaceBootromFunction('IF', 0x40, () => {}); // connect_internal_flash
replaceBootromFunction('EX', 0x41, () => {}); // flash_exit_xip
replaceBootromFunction('FC', 0x42, () => {}); // flash_flush_cache
replaceBootromFunction('CX', 0x43, () => {}); // flash_enter_cmd_xip
replaceBootromFunction('RE', 0x44, () => { // flash_range_erase(offset, count, block, cmd)
  const offset = registers[0] >>> 0;
  const count = registers[1] >>> 0;
  mcu.flash.fill(0xff, offset, offset + count);
  stats.erasedBytes += count;
  flashWritten(offset, count);
});
replaceBootromFunction('RP', 0x45, () => { // flash_range_program(offset, data, count)
  const offset = registers[0] >>> 0;
  const source = registers[1] >>> 0;
  const count = registers[2] >>> 0;
  // NOR flash programming only clears bits.
  for (let i = 0; i < count; i++) mcu.flash[offset + i] &= mcu.readUint8(source + i);
  stats.programmedBytes += count;
  flashWritten(offset, count);
});
mcu.onBreak = (code) => {
  const handler = flashHandlers[code];
  if (!handler) {
    log(`BKPT #${code} at 0x${(mcu.core.PC >>> 0).toString(16)}: halted`);
    finish(1);
    return;
  }
  handler();
  mcu.core.PC = (registers[14] & ~1) >>> 0; // return to the caller (LR, Thumb bit dropped)
};

// -- USB CDC: the serial port --------------------------------------------------------------
const cdc = new USBCDC(mcu.usbCtrl);
// Bytes from the host wait here until the emulated host controller's FIFO has room: the
// FIFO drops what does not fit.
let hostBytes = Buffer.alloc(0);
cdc.onDeviceConnected = () => {
  event({ event: 'usb', cycles: activeCycles, sim_ms: sim.clock.nanos / 1e6 });
};
cdc.onSerialData = (data) => {
  process.stdout.write(Buffer.from(data));
};
process.stdin.on('data', (chunk) => {
  hostBytes = hostBytes.length ? Buffer.concat([hostBytes, chunk]) : chunk;
});
process.stdin.on('end', () => finish(0));
function feedHost() {
  const fifo = cdc.txFIFO;
  const room = fifo.size - fifo.itemCount;
  if (!room || !hostBytes.length || !cdc.initialized) return;
  const count = Math.min(room, hostBytes.length);
  for (let i = 0; i < count; i++) cdc.sendSerialByte(hostBytes[i]);
  hostBytes = hostBytes.subarray(count);
}

// -- running -------------------------------------------------------------------------------
let stopped = false;
let activeCycles = 0;
let wallMs = 0;
function slice() {
  if (stopped) return;
  const { core } = mcu;
  const { clock } = sim;
  const start = performance.now();
  let executed = 0;
  feedHost();
  for (let i = 0; i < SLICE && !stopped; i++) {
    if (core.waiting) {
      // Asleep (WFI/WFE): jump the clock to the next timer instead of spinning through it.
      const nanos = clock.nanosToNextAlarm;
      clock.tick(nanos);
      i += nanos / CYCLE_NS;
    } else {
      const cycles = core.executeInstruction();
      activeCycles += cycles;
      executed += cycles;
      clock.tick(cycles * CYCLE_NS);
    }
  }
  wallMs += performance.now() - start;
  // An idle board (the REPL waiting for input) mostly sleeps: then give the host a moment
  // rather than racing the emulated clock ahead on a busy core.
  const idle = executed < SLICE / 20 && !hostBytes.length;
  if (idle) setTimeout(slice, 1);
  else setImmediate(slice);
}
function speed() {
  return `cycles=${activeCycles} emulated_ms=${(sim.clock.nanos / 1e6).toFixed(0)} ` +
    `busy_wall_s=${(wallMs / 1000).toFixed(1)} ` +
    `MHz=${(activeCycles / Math.max(wallMs, 1) / 1000).toFixed(1)} ` +
    `flash_erased=${stats.erasedBytes} flash_programmed=${stats.programmedBytes}`;
}
function finish(code) {
  if (stopped) return;
  stopped = true;
  saveImage();
  log(`stopped: ${speed()}`);
  process.exitCode = code;
  setImmediate(() => process.exit(code));
}
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(signal, () => finish(0));
// A hard reset (machine.reset(), mpremote reset) goes through the watchdog. rp2040js's own
// chip reset would also blank the flash, so the board reboots as a new process instead: exit
// with REBOOT_STATUS (the image saved) and pico.py starts the emulator again on the image.
const REBOOT_STATUS = 75;
mcu.peripherals[0x40058].onWatchdogTrigger = () => {
  log('watchdog reset: rebooting');
  finish(REBOOT_STATUS);
};
setInterval(() => log(speed()), 60000).unref();

mcu.core.PC = FLASH_BASE;
slice();
