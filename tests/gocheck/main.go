// Command gocheck verifies vaultd's notes and Merkle proofs with Go's
// golang.org/x/mod/sumdb/note and golang.org/x/mod/sumdb/tlog, an
// implementation independent of vaultd's own.
//
// It reads one JSON request on stdin, {"checks": [...]}, and writes
// {"results": [...]}, one result per check, in order. Byte fields (msg,
// hashes) are base64, as encoding/json does for []byte.
//
//	{"kind": "note", "msg": ..., "vkeys": ["name+hash+key", ...]}
//	    note.NewVerifier for each key, then note.Open.
//	{"kind": "inclusion", "leaf_hash": ..., "index": N, "size": N, "root": ..., "proof": [...]}
//	    tlog.CheckRecord.
//	{"kind": "consistency", "old_size": N, "new_size": N, "old_root": ..., "new_root": ..., "proof": [...]}
//	    tlog.CheckTree.
//	{"kind": "sign", "skey": "PRIVATE+KEY+...", "text": "..."}
//	    note.NewSigner, then note.Sign; the signed note comes back in msg.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type check struct {
	Kind     string   `json:"kind"`
	Msg      []byte   `json:"msg"`
	VKeys    []string `json:"vkeys"`
	SKey     string   `json:"skey"`
	Text     string   `json:"text"`
	LeafHash []byte   `json:"leaf_hash"`
	Index    int64    `json:"index"`
	Size     int64    `json:"size"`
	Root     []byte   `json:"root"`
	OldSize  int64    `json:"old_size"`
	NewSize  int64    `json:"new_size"`
	OldRoot  []byte   `json:"old_root"`
	NewRoot  []byte   `json:"new_root"`
	Proof    [][]byte `json:"proof"`
}

type result struct {
	OK      bool     `json:"ok"`
	Error   string   `json:"error,omitempty"`
	Text    string   `json:"text,omitempty"`
	Signers []string `json:"signers,omitempty"`
	Msg     []byte   `json:"msg,omitempty"`
}

func toHash(b []byte) (tlog.Hash, error) {
	var h tlog.Hash
	if len(b) != tlog.HashSize {
		return h, fmt.Errorf("hash has %d bytes, want %d", len(b), tlog.HashSize)
	}
	copy(h[:], b)
	return h, nil
}

func toHashes(bs [][]byte) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, 0, len(bs))
	for _, b := range bs {
		h, err := toHash(b)
		if err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, nil
}

func checkNote(c check) result {
	var vs []note.Verifier
	for _, k := range c.VKeys {
		v, err := note.NewVerifier(k)
		if err != nil {
			return result{Error: "NewVerifier: " + err.Error()}
		}
		vs = append(vs, v)
	}
	n, err := note.Open(c.Msg, note.VerifierList(vs...))
	if err != nil {
		return result{Error: "Open: " + err.Error()}
	}
	r := result{OK: true, Text: n.Text}
	for _, s := range n.Sigs {
		r.Signers = append(r.Signers, fmt.Sprintf("%s+%08x", s.Name, s.Hash))
	}
	return r
}

func checkSign(c check) result {
	s, err := note.NewSigner(c.SKey)
	if err != nil {
		return result{Error: "NewSigner: " + err.Error()}
	}
	msg, err := note.Sign(&note.Note{Text: c.Text}, s)
	if err != nil {
		return result{Error: "Sign: " + err.Error()}
	}
	return result{OK: true, Msg: msg}
}

func checkInclusion(c check) result {
	leaf, err1 := toHash(c.LeafHash)
	root, err2 := toHash(c.Root)
	proof, err3 := toHashes(c.Proof)
	for _, err := range []error{err1, err2, err3} {
		if err != nil {
			return result{Error: err.Error()}
		}
	}
	if err := tlog.CheckRecord(proof, c.Size, root, c.Index, leaf); err != nil {
		return result{Error: "CheckRecord: " + err.Error()}
	}
	return result{OK: true}
}

func checkConsistency(c check) result {
	oldRoot, err1 := toHash(c.OldRoot)
	newRoot, err2 := toHash(c.NewRoot)
	proof, err3 := toHashes(c.Proof)
	for _, err := range []error{err1, err2, err3} {
		if err != nil {
			return result{Error: err.Error()}
		}
	}
	if err := tlog.CheckTree(proof, c.NewSize, newRoot, c.OldSize, oldRoot); err != nil {
		return result{Error: "CheckTree: " + err.Error()}
	}
	return result{OK: true}
}

func run(c check) result {
	switch c.Kind {
	case "note":
		return checkNote(c)
	case "sign":
		return checkSign(c)
	case "inclusion":
		return checkInclusion(c)
	case "consistency":
		return checkConsistency(c)
	}
	return result{Error: "unknown kind " + c.Kind}
}

func main() {
	var req struct {
		Checks []check `json:"checks"`
	}
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		fmt.Fprintln(os.Stderr, "gocheck: bad request:", err)
		os.Exit(2)
	}
	out := struct {
		Results []result `json:"results"`
	}{Results: make([]result, 0, len(req.Checks))}
	for _, c := range req.Checks {
		out.Results = append(out.Results, run(c))
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, "gocheck:", err)
		os.Exit(1)
	}
}
