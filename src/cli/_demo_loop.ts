// A runaway plugin for the demonstration, written in wasm bytes so that the
// demo needs no toolchain: `(func (export "spin") (result i32) (loop (br 0)) (i32.const 0))`.

/** Bytes of a module whose export `spin` loops forever. */
export function watDemoLoop(): Promise<Uint8Array> {
  return Promise.resolve(
    new Uint8Array([
      0x00,
      0x61,
      0x73,
      0x6d,
      0x01,
      0x00,
      0x00,
      0x00, // header
      0x01,
      0x05,
      0x01,
      0x60,
      0x00,
      0x01,
      0x7f, // type: () -> i32
      0x03,
      0x02,
      0x01,
      0x00, // function 0 has type 0
      0x05,
      0x03,
      0x01,
      0x00,
      0x01, // memory: min 1
      0x07,
      0x08,
      0x01,
      0x04,
      0x73,
      0x70,
      0x69,
      0x6e,
      0x00,
      0x00, // export "spin"
      0x0a,
      0x0b,
      0x01,
      0x09,
      0x00,
      0x03,
      0x40,
      0x0c,
      0x00,
      0x0b,
      0x41,
      0x00,
      0x0b, // code
    ]),
  );
}
