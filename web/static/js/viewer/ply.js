// Reader for point-cloud PLY files (points.ply): vertex x, y, z, colours and an optional per-point
// confidence. Binary little/big endian and ASCII. Errors name the file and what is wrong.

const TYPES = {
  char: ["getInt8", 1], int8: ["getInt8", 1],
  uchar: ["getUint8", 1], uint8: ["getUint8", 1],
  short: ["getInt16", 2], int16: ["getInt16", 2],
  ushort: ["getUint16", 2], uint16: ["getUint16", 2],
  int: ["getInt32", 4], int32: ["getInt32", 4],
  uint: ["getUint32", 4], uint32: ["getUint32", 4],
  float: ["getFloat32", 4], float32: ["getFloat32", 4],
  double: ["getFloat64", 8], float64: ["getFloat64", 8],
};

// Property names read as the per-point confidence, in order of preference.
export const CONFIDENCE_NAMES = ["confidence", "conf"];

function parseHeader(bytes, name) {
  const probe = new TextDecoder("latin1").decode(bytes.subarray(0, Math.min(bytes.length, 65536)));
  const end = probe.indexOf("end_header");
  if (!probe.startsWith("ply") || end < 0) throw new Error(`${name}: not a PLY file (no 'ply' header)`);
  const nl = probe.indexOf("\n", end);
  const headerLength = nl < 0 ? probe.length : nl + 1;
  const lines = probe.slice(0, end).split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
  let format = null;
  const elements = [];
  for (const line of lines) {
    const parts = line.split(/\s+/);
    if (parts[0] === "format") format = parts[1];
    else if (parts[0] === "element") elements.push({ name: parts[1], count: Number(parts[2]), props: [] });
    else if (parts[0] === "property") {
      const el = elements.at(-1);
      if (!el) throw new Error(`${name}: property before any element`);
      if (parts[1] === "list") el.props.push({ name: parts[4], list: true, countType: parts[2], type: parts[3] });
      else el.props.push({ name: parts[2], type: parts[1] });
    }
  }
  if (!["ascii", "binary_little_endian", "binary_big_endian"].includes(format)) {
    throw new Error(`${name}: unsupported PLY format '${format}'`);
  }
  for (const el of elements) {
    for (const p of el.props) {
      if (!TYPES[p.type] || (p.list && !TYPES[p.countType])) {
        throw new Error(`${name}: property '${p.name}' has unknown type '${p.type}'`);
      }
    }
  }
  return { format, elements, headerLength };
}

// Parse a points PLY. Returns {count, positions Float32Array[3N], colors Float32Array[3N] in [0,1],
// confidence Float32Array[N] or null}.
export function parsePointPly(buffer, name = "points.ply") {
  const bytes = new Uint8Array(buffer);
  const { format, elements, headerLength } = parseHeader(bytes, name);
  const vertexIndex = elements.findIndex((e) => e.name === "vertex");
  if (vertexIndex < 0) throw new Error(`${name}: no 'vertex' element`);
  const vertex = elements[vertexIndex];
  const col = (n) => vertex.props.findIndex((p) => p.name === n && !p.list);
  const ix = ["x", "y", "z"].map(col);
  if (ix.some((i) => i < 0)) throw new Error(`${name}: vertex needs x, y and z properties`);
  const ic = ["red", "green", "blue"].map(col);
  const confName = CONFIDENCE_NAMES.find((n) => col(n) >= 0);
  const iconf = confName ? col(confName) : -1;
  const n = vertex.count;
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name}: bad vertex count`);
  const positions = new Float32Array(3 * n);
  const colors = new Float32Array(3 * n).fill(0.8);
  const confidence = iconf >= 0 ? new Float32Array(n) : null;
  const colorScale = ic[0] >= 0 && vertex.props[ic[0]].type.startsWith("float") ? 1 : 1 / 255;
  const store = (i, values) => {
    for (let k = 0; k < 3; k++) positions[3 * i + k] = values[ix[k]];
    if (ic[0] >= 0) for (let k = 0; k < 3; k++) colors[3 * i + k] = values[ic[k]] * colorScale;
    if (confidence) confidence[i] = values[iconf];
  };

  if (format === "ascii") {
    const text = new TextDecoder("latin1").decode(bytes.subarray(headerLength));
    const tokens = text.split(/\s+/).filter(Boolean);
    let t = 0;
    for (let e = 0; e < vertexIndex; e++) {
      for (let r = 0; r < elements[e].count; r++) {
        for (const p of elements[e].props) t += p.list ? 1 + Number(tokens[t]) : 1;
      }
    }
    const values = new Array(vertex.props.length);
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < vertex.props.length; k++) {
        if (vertex.props[k].list) throw new Error(`${name}: list properties on vertices are not supported`);
        values[k] = Number(tokens[t++]);
      }
      if (t > tokens.length) throw new Error(`${name}: file ends after ${i} of ${n} vertices`);
      store(i, values);
    }
  } else {
    const little = format === "binary_little_endian";
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let off = headerLength;
    const need = (k) => {
      if (off + k > bytes.byteLength) throw new Error(`${name}: file is truncated`);
    };
    for (let e = 0; e < vertexIndex; e++) {
      for (let r = 0; r < elements[e].count; r++) {
        for (const p of elements[e].props) {
          if (p.list) {
            const [getter, size] = TYPES[p.countType];
            need(size);
            const len = view[getter](off, little);
            off += size + len * TYPES[p.type][1];
          } else off += TYPES[p.type][1];
        }
      }
    }
    if (vertex.props.some((p) => p.list)) throw new Error(`${name}: list properties on vertices are not supported`);
    const readers = vertex.props.map((p) => TYPES[p.type]);
    const stride = readers.reduce((a, [, size]) => a + size, 0);
    need(stride * n);
    const values = new Array(readers.length);
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < readers.length; k++) {
        const [getter, size] = readers[k];
        values[k] = view[getter](off, little);
        off += size;
      }
      store(i, values);
    }
  }
  return { count: n, positions, colors, confidence, confidenceName: confName ?? null };
}
