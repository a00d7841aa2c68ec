// 【上传文件】: show what was chosen (or dropped on the zone) and keep the button from being
// pressed twice while a large upload is on its way.
(() => {
  for (const form of document.querySelectorAll("[data-upload-form]")) {
    const input = form.querySelector("[data-file-input]");
    const chosen = form.querySelector("[data-chosen]");
    const zone = form.querySelector("[data-drop-zone]");
    const button = form.querySelector("[data-upload-button]");
    const show = () => {
      const names = [...input.files].map((f) => f.name);
      chosen.hidden = names.length === 0;
      chosen.textContent = names.length ? `已选择 ${names.length} 个文件：${names.join("、")}` : "";
    };
    input.addEventListener("change", show);
    for (const type of ["dragenter", "dragover"]) {
      zone.addEventListener(type, (event) => {
        event.preventDefault();
        zone.classList.add("is-over");
      });
    }
    zone.addEventListener("dragleave", () => zone.classList.remove("is-over"));
    zone.addEventListener("drop", (event) => {
      event.preventDefault();
      zone.classList.remove("is-over");
      input.files = event.dataTransfer.files;
      show();
    });
    form.addEventListener("submit", () => {
      button.disabled = true;
      button.textContent = "正在上传…";
    });
  }
})();
