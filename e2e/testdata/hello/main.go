// Command hello is the entrypoint of the image the end-to-end tests push
// and pull: it prints the files of the image's other layers, so the output
// shows every layer came back intact.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Println("hello from a berth image")
	for _, name := range []string{"/data/a.txt", "/data/b.txt"} {
		b, err := os.ReadFile(name)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Printf("%s: %s", name, b)
	}
}
